"""Large log requests decoded in a worker process (`Offload`): the same rows and answers as a
decode in the server, an error raised back as it was, a worker that dies replaced (a request
that kills two is refused, the next one decoded), the workers stopped once idle."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.logs.test_bad_input import _OFF, _post, _request
from tests.logs.test_http import _server
from watchkeeper.errors import DecodeError
from watchkeeper.ingest._logs_decode import decode_logs
from watchkeeper.ingest._logs_ingest import OFFLOAD_BYTES
from watchkeeper.ingest._offload import Offload

NOW = 1_750_000_000_000_000_000


def _die(_: bytes) -> None:
    os._exit(3)  # as a decoder crashing in C would


def test_a_worker_decodes_what_the_server_would() -> None:
    body = _request(*({"body": f"line {i} " + "x" * 200, "time": NOW} for i in range(400)))

    async def run() -> None:
        pool = Offload(1, idle_s=None)
        try:
            there = await pool.run(decode_logs, body, "protobuf", "p", NOW)
            assert there.table.equals(decode_logs(body, "protobuf", "p", NOW).table)
            with pytest.raises(DecodeError, match="not an OTLP"):
                await pool.run(decode_logs, b"\xff\xff", "protobuf", "p", NOW)
            with pytest.raises(DecodeError, match="stopped its decoder process twice"):
                await pool.run(_die, b"")
            assert (await pool.run(decode_logs, body, "protobuf", "p", NOW)).count == 400
        finally:
            pool.close()

    asyncio.run(run())


def test_idle_workers_stop_and_start_again() -> None:
    now = [0.0]
    body = _request({"body": "one", "time": NOW})

    async def run() -> None:
        pool = Offload(1, idle_s=60, clock=lambda: now[0])
        try:
            await pool.run(decode_logs, body, "protobuf", "p", NOW)
            assert pool.running == 1
            now[0] += 59
            assert not pool.retire_if_idle() and pool.running == 1
            now[0] += 1
            assert pool.retire_if_idle() and pool.running == 0
            assert (await pool.run(decode_logs, body, "protobuf", "p", NOW)).count == 1
            assert pool.running == 1
        finally:
            pool.close()

    asyncio.run(run())


def test_a_server_decodes_large_requests_in_its_worker(tmp_path: Path) -> None:
    records = [{"body": f"large {i} " + "y" * 300, "time": time.time_ns()} for i in range(300)]
    body = _request(*records)
    assert len(body) >= OFFLOAD_BYTES
    with _server(tmp_path / "data", **_OFF) as (url, svc):
        assert svc.logs_ingest.decoders is not None and svc.logs_ingest.decoders.running == 0
        assert _post(url, _request({"body": "small"})).status_code == 200
        assert svc.logs_ingest.decoders.running == 0  # small: decoded in the server
        assert _post(url, body).status_code == 200
        assert svc.logs_ingest.decoders.running == 1
        assert _post(url, b"\x0a" + b"\xff" * OFFLOAD_BYTES).status_code == 400
        assert svc.logs_ingest.flush(30)
        assert svc.logs_ingest.store.count() == 301
