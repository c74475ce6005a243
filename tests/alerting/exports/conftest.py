"""Helpers for running the real Prometheus tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """Path of a Prometheus tool, or skip the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    """Run a tool; fail the test with its output when it exits non-zero."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr
