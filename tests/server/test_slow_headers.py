"""A client that trickles its request headers is cut off with a 408; the others are served."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.server._process import ServerProcess


def _trickle_headers(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")  # and stalls
    return sock


@pytest.mark.slow
def test_slow_headers_get_408_and_hold_nothing(tmp_path: Path) -> None:
    env = {"WATCHKEEPER_SERVER__HEADER_TIMEOUT_S": "1.5"}
    server = ServerProcess(tmp_path / "data", env=env).start()
    slow: list[socket.socket] = []
    try:
        slow = [_trickle_headers(server.port) for _ in range(100)]
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # sends nothing
        slow.append(idle)
        for _ in range(10):  # meanwhile, requests that send are answered
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        started = time.monotonic()
        answers = []
        for sock in slow:
            sock.settimeout(10)
            answers.append(sock.recv(4096))
        assert {a.split(b"\r\n", 1)[0] for a in answers} == {b"HTTP/1.1 408 Request Timeout"}
        body = json.loads(answers[0].split(b"\r\n\r\n", 1)[1])  # our error shape, too
        assert body == {"error": "the request headers came too slow (server.header_timeout_s)"}
        assert time.monotonic() - started < 10
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        line = next(x for x in metrics.splitlines() if x.startswith("watchkeeper_ingest_slow"))
        assert float(line.split()[-1]) == 101
    finally:
        for sock in slow:
            sock.close()
        server.stop()
