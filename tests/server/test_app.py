"""The app factory on a fresh data directory, in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_build_services_on_a_fresh_data_dir_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # A fresh interpreter: nothing else has imported the packages that declare meta tables.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from watchkeeper.config import load_config\n"
        "from watchkeeper.server.app import build_services\n"
        "cfg = load_config(env={}, overrides={'server': {'data_dir': sys.argv[1]}})\n"
        "svc = build_services(cfg)\n"
        "print(svc.store.count(), svc.keys.required)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "False"]
