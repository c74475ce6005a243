"""Fixed loopback ports for the servers a test session starts (PostgreSQL, the exporters),
moved apart for each pytest-xdist worker: the workers are sessions side by side."""

from __future__ import annotations

import os

#: How far one worker's ports are from the next one's.
STRIDE = 10


def worker_port(base: int) -> int:
    """`base` for the only (or first) worker, `base + STRIDE * n` for worker `gw<n>`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return base + STRIDE * int(worker.removeprefix("gw") or 0)
