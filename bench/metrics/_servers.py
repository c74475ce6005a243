"""The two servers of the metrics benchmark, each a real process on loopback: `watchkeeper
serve`, and Debian's `prometheus` with its remote-write receiver (and admin API, for a
snapshot of its TSDB)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: Ports of this benchmark (issue 13's range for it: 19400-19499); another range with
#: `WATCHKEEPER_BENCH_PORT` (Watchkeeper's; Prometheus's is the next one), so two runs can
#: share a machine.
WATCHKEEPER_PORT = int(os.environ.get("WATCHKEEPER_BENCH_PORT", "19400"))
PROMETHEUS_PORT = WATCHKEEPER_PORT + 1


def _ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: the process exited; see {log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"{url} did not become ready; see {log}")


def start_watchkeeper(work: Path) -> subprocess.Popen[bytes]:
    """`watchkeeper serve` on WATCHKEEPER_PORT, its data in `work/wk`."""
    log = work / "watchkeeper.log"
    env = {
        **os.environ,
        "WATCHKEEPER_METRICS__MAX_SERIES_PER_PROJECT": "1000000",
        "WATCHKEEPER_ALERTING__ENABLED": "false",
    }
    cmd = [
        sys.executable,
        "-m",
        "watchkeeper",
        "serve",
        "--port",
        str(WATCHKEEPER_PORT),
        "--data-dir",
        str(work / "wk"),
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    _ready(proc, f"http://127.0.0.1:{WATCHKEEPER_PORT}/readyz", log)
    return proc


def start_prometheus(work: Path) -> subprocess.Popen[bytes]:
    """Prometheus on PROMETHEUS_PORT: no scrapes, its remote-write receiver on."""
    binary = shutil.which("prometheus")
    if binary is None:
        sys.exit("prometheus is not installed (scripts/setup.sh dev installs it)")
    config = work / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\n")
    log = work / "prometheus.log"
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
        "--web.enable-remote-write-receiver",
        "--web.enable-admin-api",
        "--storage.tsdb.retention.time=30d",
        "--log.level=warn",
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    _ready(proc, f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready", log)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server gracefully (the metric store checkpoints its file on the way out)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def size(path: Path) -> int:
    """Bytes of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
