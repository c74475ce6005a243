"""A client that hangs up mid-body is a quiet log line, not an ERROR with a traceback."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.eventually import eventually
from tests.server._process import ServerProcess


def _hang_up_mid_body(url: str, path: str, headers: str = "") -> None:
    port = urlsplit(url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n".encode()
            + b'{"resourceSpans": ['
        )
        time.sleep(0.3)  # let the server start reading the body


@pytest.mark.slow
def test_a_client_hanging_up_mid_body_is_a_quiet_line(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()  # auth off: the body is read
    try:
        _hang_up_mid_body(server.url, "/v1/traces")
        _hang_up_mid_body(server.url, "/api/v1/scores")
        assert eventually(lambda: server.output().count("client disconnected") == 2, 10)
        out = server.output()
        assert "Traceback" not in out and '"level": "ERROR"' not in out
        lines = [line for line in out.splitlines() if "client disconnected" in line]
        assert all('"level": "INFO"' in line for line in lines)
        assert "/v1/traces" in lines[0] and "/api/v1/scores" in lines[1]
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # and carries on
    finally:
        server.stop()
