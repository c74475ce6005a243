"""Infrastructure for the demo to watch: a Redis and its exporter, started when Debian's
`redis-server` and `prometheus-redis-exporter` are installed, and the scrape jobs that read
them and the demo service's own /metrics, so the Infrastructure page has data on first run.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx

from watchkeeper.demo._scenario import SERVICE

SCRAPE_INTERVAL_S = 5.0


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _up(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def local_redis(timeout_s: float = 10.0) -> Iterator[str | None]:
    """Run a Redis (in memory only, 64 MiB max) and its exporter on free loopback ports;
    yield the exporter's host:port, or None when either program is not installed or does
    not start. Both stop when the block ends."""
    server, exporter = shutil.which("redis-server"), shutil.which("prometheus-redis-exporter")
    if server is None or exporter is None:
        yield None
        return
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="wk-demo-redis-") as work:
        try:
            redis_port, exporter_port = free_port(), free_port()
            procs.append(subprocess.Popen(
                [server, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                 "--appendonly", "no", "--dir", work, "--maxmemory", "64mb"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            procs.append(subprocess.Popen(
                [exporter, "-redis.addr", f"redis://127.0.0.1:{redis_port}",
                 "-web.listen-address", f"127.0.0.1:{exporter_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            target = f"127.0.0.1:{exporter_port}"
            yield target if _up(f"http://{target}/metrics", procs[-1], timeout_s) else None
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()


def scrape_jobs(demo_port: int, redis_exporter: str | None) -> list[dict[str, Any]]:
    """The demo's `metrics.scrape` jobs: its service's /metrics (job = the service's name,
    as the FastAPI service dashboard reads it) and the Redis exporter when there is one."""
    jobs: list[dict[str, Any]] = [
        {"job_name": SERVICE, "targets": [f"127.0.0.1:{demo_port}"],
         "interval_s": SCRAPE_INTERVAL_S, "timeout_s": SCRAPE_INTERVAL_S},
    ]  # fmt: skip
    if redis_exporter is not None:
        jobs.append({"job_name": "redis", "targets": [redis_exporter],
                     "interval_s": SCRAPE_INTERVAL_S, "timeout_s": SCRAPE_INTERVAL_S})  # fmt: skip
    return jobs
