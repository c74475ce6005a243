"""Ctrl-C in the terminal of `scripts/run.sh` (`watchkeeper demo`) stops the load, then the
demo app (its spans flushed), then the server: in under 5 s, and without the app's exporter
finding the server gone (issue 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.eventually import eventually
from tests.server._process import free_port

pytestmark = pytest.mark.slow

STOP_WITHIN_S = 5.0
# What the app's OTLP exporter and feedback sender print when the server is gone first.
SERVER_GONE = ("Connection refused", "Transient error", "Failed to export", "not delivered")


def _spans_flowing(url: str, timeout_s: float = 90.0) -> bool:
    def flowing() -> bool:
        try:
            r = httpx.get(
                f"{url}/api/v1/summary", params={"range": "1h", "service": "demo-ai-service"}
            )
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json()["count"] > 0

    return eventually(flowing, timeout_s, 0.5)


def test_ctrl_c_stops_load_then_app_then_server_within_5_s(tmp_path: Path) -> None:
    port, demo_port = free_port(), free_port()
    log_path = tmp_path / "demo.log"
    cmd = [sys.executable, "-m", "watchkeeper", "demo", "--port", str(port)]
    cmd += ["--demo-port", str(demo_port), "--data-dir", str(tmp_path / "data"), "--rate", "8"]
    with log_path.open("wb") as log:
        # A job of its own, as a shell starts it: the terminal's Ctrl-C goes to its group.
        demo = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    family: list[psutil.Process] = []
    try:
        assert _spans_flowing(f"http://127.0.0.1:{port}"), log_path.read_text()[-3000:]
        family = [psutil.Process(demo.pid), *psutil.Process(demo.pid).children(recursive=True)]
        time.sleep(2)  # requests in flight, spans queued in the app
        started = time.monotonic()
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    output = log_path.read_text(errors="replace")
    assert took < STOP_WITHIN_S, f"stopped in {took:.1f} s\n{output[-3000:]}"
    assert demo.returncode == 0, output[-3000:]
    gone = [line for line in output.splitlines() if any(s in line for s in SERVER_GONE)]
    assert gone == [], "\n".join(gone[:5])
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == [], alive  # the server and its workers went too
