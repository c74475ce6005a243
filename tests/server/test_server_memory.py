"""What the server process keeps in memory: no pandas in the embedded server."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.server._process import ServerProcess


def _spans(n: int) -> bytes:
    spans = [
        {
            "traceId": f"{7:032x}",
            "spanId": f"{i + 1:016x}",
            "name": f"step {i}",
            "startTimeUnixNano": str(time.time_ns() - 10**9),
            "endTimeUnixNano": str(time.time_ns()),
        }
        for i in range(n)
    ]
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


def test_the_embedded_server_writes_without_loading_pandas(tmp_path: Path) -> None:
    pytest.importorskip("pandas")  # installed here (chdb brings it): the server must not load it
    server = ServerProcess(tmp_path / "data").start()
    try:
        r = httpx.post(
            f"{server.url}/v1/traces",
            content=_spans(50),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # written: pyarrow and DuckDB have run
            trace = httpx.get(f"{server.url}/api/v1/traces/{7:032x}", timeout=30)
            if trace.status_code == 200 and len(trace.json()["spans"]) == 50:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the spans were never written")
        assert server.proc is not None
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
        assert "pandas" not in maps and "numpy" in maps  # numpy: pyarrow's own, kept
        assert "failed" not in server.output()  # every write went through the first time
    finally:
        server.stop()
