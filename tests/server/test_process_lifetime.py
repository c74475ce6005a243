"""The server's worker processes live and die with it, and a restart right after is safe."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from tests.eventually import eventually
from tests.server._process import ServerProcess

NOW = 1_764_000_000_000_000_000
JSON = {"content-type": "application/json"}


def _children(pid: int, at_least: int) -> list[psutil.Process]:
    """The server's child processes, once its ingest workers have all started."""
    kids = eventually(
        lambda: psutil.Process(pid).children(recursive=True),
        30,
        0.1,
        until=lambda k: len(k) >= at_least,
    )
    assert len(kids) >= at_least, f"only {len(kids)} child processes"
    return kids


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _alive_after(kids: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    eventually(lambda: all(_gone(p) for p in kids), seconds, 0.02)
    return [p for p in kids if not _gone(p)]


def _body(first: int, n: int) -> bytes:
    spans = [
        {
            "traceId": f"{first + i + 1:032x}",
            "spanId": f"{first + i + 1:016x}",
            "name": "lifetime",
            "startTimeUnixNano": str(NOW),
            "endTimeUnixNano": str(NOW + 1000),
        }
        for i in range(n)
    ]
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


def _send(url: str, first: int, n: int) -> None:
    """Send as an OTLP exporter does: a 503/429 (the lag budget, while a restart replays
    what was spooled before it) is retried after its Retry-After."""
    deadline = time.monotonic() + 120
    while True:
        r = httpx.post(f"{url}/v1/traces", content=_body(first, n), headers=JSON, timeout=30)
        if r.status_code not in (429, 503) or time.monotonic() > deadline:
            break
        time.sleep(min(float(r.headers.get("retry-after", "1")), 2.0))
    assert r.status_code == 200, r.text


def _count(url: str, want: int) -> int:
    params = {"start": "1764000000000", "end": "1764000001000"}  # unix ms
    n = eventually(
        lambda: int(httpx.get(f"{url}/api/v1/summary", params=params, timeout=30).json()["count"]),
        60,
        0.2,
        until=lambda got: got >= want,
    )
    return n


def _load(url: str, stop: threading.Event) -> None:
    """Keep the workers busy: 2,000-span requests back to back until told or refused."""
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            try:
                client.post(f"{url}/v1/traces", content=_body(10_000, 2_000), headers=JSON)
            except httpx.HTTPError:
                return


@pytest.mark.slow
def test_workers_die_at_once_with_a_killed_server_and_a_restart_is_safe(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    stop = threading.Event()
    try:
        assert server.proc is not None
        kids = _children(server.proc.pid, at_least=3)  # three ingest workers (+ the tracker)
        _send(server.url, 0, 50)
        senders = [threading.Thread(target=_load, args=(server.url, stop)) for _ in range(3)]
        for t in senders:
            t.start()
        time.sleep(2)  # the workers are decoding when the server dies
        server.kill()
        # Measured after the server is reaped: 1-5 ms with PR_SET_PDEATHSIG; polling for
        # the parent took 0.19-0.41 s here (up to a second) while the workers were busy.
        assert _alive_after(kids, 0.25) == [], "child processes outlived the server"
        stop.set()
        for t in senders:
            t.join(timeout=30)
        server = ServerProcess(tmp_path / "data", server.port).start()  # same data dir
        _send(server.url, 100, 50)
        assert _count(server.url, 100) >= 100  # what was acknowledged before the kill, and after
    finally:
        stop.set()
        server.stop()


@pytest.mark.slow
def test_no_process_lingers_after_sigterm(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    assert server.proc is not None
    kids = _children(server.proc.pid, at_least=3)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    assert _alive_after(kids, 1.0) == [], "child processes outlived the server by 1 s"
