"""Decode + normalize in a worker process: same rows as in-process, and crash recovery."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest
import zstandard
from prometheus_client import CollectorRegistry

from tests.ingest.conftest import DATA, make_config
from watchkeeper.ingest import DEFAULT_STEPS, Draft, IngestService, Position, Pricer, Record
from watchkeeper.ingest._workers import PoolProcessing, Processing
from watchkeeper.model import PackedPayload
from watchkeeper.store._payload import PayloadCodec, decode_payload
from watchkeeper.store.duckdb import DuckDBStore

VECTORS = sorted((DATA / "otlp").glob("*.json"))


def _record(body: bytes, n: int) -> Record:
    return Record(Position(0, n), "p1", "json", body, 0)


def test_worker_rows_equal_in_process_rows_on_the_conformance_vectors() -> None:
    records = [
        _record(orjson.dumps(orjson.loads(p.read_bytes())["request"]), i)
        for i, p in enumerate(VECTORS)
    ]
    records.append(_record(b"{not json", len(records)))  # poisoned: same outcome both ways
    inline, pool = (
        Processing(Pricer(), DEFAULT_STEPS),
        PoolProcessing(Pricer(), DEFAULT_STEPS, workers=1, window=2),
    )
    try:
        for rec in records:
            inline.submit(rec)
            while pool.full:
                _compare(inline, pool)
            pool.submit(rec)
        while pool:
            _compare(inline, pool)
    finally:
        pool.close()


def _compare(inline: Processing, pool: Processing) -> None:
    rec_a, want = inline.take()
    rec_b, got = pool.take()
    assert rec_a == rec_b
    assert got.batch == want.batch
    assert (got.dropped, got.reason) == (want.dropped, want.reason)


def test_workers_compress_payloads_with_the_store_codec() -> None:
    records = [
        _record(orjson.dumps(orjson.loads(p.read_bytes())["request"]), i)
        for i, p in enumerate(VECTORS)
    ]
    inline = Processing(Pricer(), DEFAULT_STEPS)
    pool = PoolProcessing(Pricer(), DEFAULT_STEPS, workers=1, window=2, packer=PayloadCodec)
    dz = zstandard.ZstdDecompressor()
    try:
        payloads = 0
        for rec in records:
            inline.submit(rec)
            pool.submit(rec)
            (_, want_out), (_, got_out) = inline.take(), pool.take()
            assert got_out.batch.packed and not want_out.batch.packed
            want, got = want_out.batch.rows(), got_out.batch.rows()
            assert got.spans == want.spans
            assert all(isinstance(p, PackedPayload) for p in got.payloads)
            unpacked = [
                decode_payload((p.project, p.trace_id, p.span_id, p.start_ns, p.io, p.meta), dz)
                for p in got.payloads
                if isinstance(p, PackedPayload)
            ]
            assert unpacked == want.payloads
            payloads += len(unpacked)
        assert payloads > 0
    finally:
        pool.close()


def crash_once(d: Draft) -> None:
    """A step that kills its process the first time it sees the marked span."""
    marker = d.raw.attributes.get("test.crash_marker")
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)


def _body(seed: int, spans: int, marker: str = "") -> bytes:
    attrs = [{"key": "test.crash_marker", "value": {"stringValue": marker}}] if marker else []
    rows = [
        {
            "traceId": f"{seed:032x}",
            "spanId": f"{i + 1:016x}",
            "name": f"s{i}",
            "startTimeUnixNano": "1763900000000000000",
            "endTimeUnixNano": "1763900001000000000",
            "attributes": attrs if i == spans // 2 else [],
        }
        for i in range(spans)
    ]
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": rows}]}]})


@pytest.mark.slow
def test_a_worker_that_dies_mid_batch_is_replaced_and_nothing_is_lost_or_duplicated(
    tmp_path: Path,
) -> None:
    store, registry = DuckDBStore(None), CollectorRegistry()
    marker = tmp_path / "crashed"
    config = make_config(tmp_path, batch_max_wait_ms=10, workers=1)
    service = IngestService(config, store, registry, steps=(*DEFAULT_STEPS, crash_once))
    bodies = [_body(seed, 50, str(marker) if seed == 5 else "") for seed in range(1, 11)]

    async def send() -> None:
        for body in bodies:
            await service.accept("default", body, "application/json", None)

    service.start()
    try:
        asyncio.run(send())
        assert service.flush(60)
    finally:
        service.stop()
    assert marker.exists()  # the worker did die
    assert store.count("default") == 500
    rejected = registry.get_sample_value("watchkeeper_ingest_spans_rejected_total", {}) or 0.0
    assert rejected == 0
    assert registry.get_sample_value("watchkeeper_ingest_spans_written_total") == 500
    store.close()


_KILLED_PARENT = """
import sys, time
from watchkeeper.ingest import DEFAULT_STEPS, Position, Pricer, Record
from watchkeeper.ingest._workers import PoolProcessing
pool = PoolProcessing(Pricer(), DEFAULT_STEPS, workers=1, window=1)
pool.submit(Record(Position(0, 1), "p", "json", b'{"resourceSpans": []}', 0))
pool.take()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_workers_leave_when_the_server_is_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
    finally:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive


def test_a_worker_loads_only_the_span_pipeline() -> None:
    """A worker process imports `_workers` (and so the package's `__init__`), and the
    store's payload codec it is given, in a fresh interpreter: the metric store, the
    scraper, the HTTP side, the span store's engine and Arrow stay out of it (they took
    each worker from 45 to 145 MiB; Arrow and numpy, through the store package, to 97), and
    so do the config's models and the SDK (pydantic, asyncio: 40 MiB where 23 is enough)."""
    heavy = ("numpy", "duckdb", "pyarrow", "httpx", "fastapi", "watchkeeper.store.metrics",
             "pydantic", "asyncio", "watchkeeper.config", "watchkeeper.sdk")  # fmt: skip
    code = (
        "import sys, watchkeeper.ingest._workers, watchkeeper.store._payload; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def _workers_of(pool_owner: psutil.Process) -> list[psutil.Process]:
    """The pool's worker processes among this process's children (not its resource tracker)."""
    return [
        p
        for p in pool_owner.children()
        if "spawn_main" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE
    ]


def test_idle_workers_stop_and_the_next_record_starts_them_again() -> None:
    body = _body(7, 20)
    now = [0.0]
    pool = PoolProcessing(
        Pricer(), DEFAULT_STEPS, workers=1, window=2, idle_s=60, clock=lambda: now[0]
    )
    me = psutil.Process()
    try:
        pool.submit(_record(body, 1))
        now[0] = 100.0
        assert not pool.retire_if_idle()  # a record in flight: the workers stay
        _, first = pool.take()
        assert pool.running == 1 and len(_workers_of(me)) == 1
        pool.submit(_record(body, 2))
        pool.take()
        now[0] = 159.0
        assert not pool.retire_if_idle()  # 59 s since the last record: not idle long enough
        now[0] = 160.0
        gone = _workers_of(me)
        assert pool.retire_if_idle()
        assert pool.running == 0
        _, alive = psutil.wait_procs(gone, timeout=15)
        assert not alive
        assert not pool.retire_if_idle()  # nothing left to stop
        pool.submit(_record(body, 3))  # starts a worker again
        _, again = pool.take()
        assert again.batch == first.batch and len(again.batch) == 20
        assert pool.running == 1 and len(_workers_of(me)) == 1
    finally:
        pool.close()
    assert pool.running == 0


@pytest.mark.slow
def test_the_service_stops_idle_workers_and_writes_what_comes_after(tmp_path: Path) -> None:
    store, registry = DuckDBStore(None), CollectorRegistry()
    config = make_config(tmp_path, batch_max_wait_ms=10, workers=1, workers_idle_s=0.3)
    service = IngestService(config, store, registry)

    def running() -> float | None:
        return registry.get_sample_value("watchkeeper_ingest_workers")

    async def send(*seeds: int) -> None:
        for seed in seeds:
            await service.accept("default", _body(seed, 30), "application/json", None)

    service.start()
    try:
        asyncio.run(send(1, 2))
        assert service.flush(60)
        deadline = time.monotonic() + 30
        while running() != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running() == 0 and not _workers_of(psutil.Process())
        asyncio.run(send(3, 4))  # the workers start again: no record is processed elsewhere
        assert service.flush(60)
    finally:
        service.stop()
    assert store.count("default") == 4 * 30
    store.close()
