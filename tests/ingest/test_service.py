"""IngestService behaviour: pipeline steps, store failures, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.ingest.conftest import GatedStore, make_config
from watchkeeper.errors import Overloaded
from watchkeeper.ingest import DEFAULT_STEPS, Draft, DropSpan, IngestService
from watchkeeper.ingest._service import MAX_IN_FLIGHT
from watchkeeper.model import SpanBatch
from watchkeeper.store.duckdb import DuckDBStore


def _body(names: list[str], seed: int = 1) -> bytes:
    spans = [
        {
            "traceId": f"{seed:032x}",
            "spanId": f"{i + 1:016x}",
            "name": name,
            "startTimeUnixNano": "1763900000000000000",
            "endTimeUnixNano": "1763900001000000000",
        }
        for i, name in enumerate(names)
    ]
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


def _send(service: IngestService, *bodies: bytes) -> None:
    async def go() -> None:
        for body in bodies:
            await service.accept("default", body, "application/json", None)

    asyncio.run(go())


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def drop_health_checks(d: Draft) -> None:
    """A deployment's own step: leave health checks out."""
    if d.row.name == "GET /health":
        raise DropSpan


def explode_on_poison(d: Draft) -> None:
    """A buggy step: fails on one span."""
    if d.row.name == "poison":
        raise RuntimeError("bug in a step")


@pytest.mark.slow
def test_extra_steps_drop_spans_and_a_failing_step_costs_only_its_span(tmp_path: Path) -> None:
    store = DuckDBStore(None)
    registry = CollectorRegistry()
    steps = (*DEFAULT_STEPS, drop_health_checks, explode_on_poison)
    service = IngestService(
        make_config(tmp_path, batch_max_wait_ms=10), store, registry, steps=steps
    )
    service.start()
    try:
        _send(
            service,
            _body(["GET /health", "work", "more work"], seed=1),
            _body(["poison", "innocent"], seed=2),
            _body(["after"], seed=3),
        )
        assert service.flush(30)
    finally:
        service.stop()
    assert store.count("default") == 4  # 2 of the first request, 'innocent', 1 after
    assert (
        _sample(registry, "watchkeeper_ingest_spans_rejected_total", reason="dropped_by_pipeline")
        == 1
    )
    assert (
        _sample(registry, "watchkeeper_ingest_spans_rejected_total", reason="normalize_error") == 1
    )
    store.close()


class FlakyStore:
    """A real DuckDB store that fails its first writes, like a full disk that recovers."""

    def __init__(self, failures: int) -> None:
        self.inner = DuckDBStore(None)
        self.failures = failures

    def write(self, batch: SpanBatch) -> int:
        """Fail while failures remain, then write."""
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        return self.inner.write(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.slow
def test_store_failures_are_retried_and_counted_without_loss(tmp_path: Path) -> None:
    store = FlakyStore(failures=2)
    registry = CollectorRegistry()
    service = IngestService(make_config(tmp_path, batch_max_wait_ms=10), store, registry)  # type: ignore[arg-type]
    service.start()
    try:
        _send(service, _body(["a", "b", "c"]))
        assert service.flush(30)
    finally:
        service.stop()
    assert store.inner.count("default") == 3
    assert _sample(registry, "watchkeeper_ingest_store_write_errors_total") == 2
    assert _sample(registry, "watchkeeper_ingest_spans_written_total") == 3


@pytest.mark.slow
def test_metrics_backlog_and_lag(tmp_path: Path) -> None:
    now = [1_000.0]
    registry = CollectorRegistry()
    store = DuckDBStore(None)
    service = IngestService(
        make_config(tmp_path, batch_max_wait_ms=10), store, registry, clock=lambda: now[0]
    )
    service.start()
    try:
        assert _sample(registry, "watchkeeper_ingest_spool_backlog_bytes") == 0
        _send(service, _body(["a", "b"]))
        now[0] = 1_003.0
        assert service.flush(30)
        assert _sample(registry, "watchkeeper_ingest_spool_backlog_bytes") == 0
        assert _sample(registry, "watchkeeper_ingest_spool_backlog_age_seconds") == 0
        assert _sample(registry, "watchkeeper_ingest_spans_accepted_total") == 2
        assert _sample(registry, "watchkeeper_ingest_lag_seconds_count") == 1
        assert _sample(registry, "watchkeeper_ingest_batch_write_seconds_count") >= 1
    finally:
        service.stop()
    store.close()


@pytest.mark.slow
def test_backlog_age_while_the_store_is_behind(tmp_path: Path) -> None:
    now = [2_000.0]
    store = GatedStore()
    registry = CollectorRegistry()
    service = IngestService(
        make_config(tmp_path, batch_max_wait_ms=10),
        store,
        registry,
        clock=lambda: now[0],  # type: ignore[arg-type]
    )
    service.start()
    try:
        _send(service, _body(["x"]))
        now[0] = 2_007.5
        assert service.backlog_age_s == 7.5
        assert service.backlog_bytes > 0
        assert _sample(registry, "watchkeeper_ingest_spool_backlog_age_seconds") == 7.5
        store.gate.set()
        assert service.flush(30)
        assert service.backlog_bytes == 0 and service.backlog_age_s == 0
    finally:
        store.gate.set()
        service.stop()


def test_admission_bounds_requests_in_flight(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    service = IngestService(make_config(tmp_path), DuckDBStore(None), registry)
    with contextlib.ExitStack() as held:
        for _ in range(MAX_IN_FLIGHT):
            held.enter_context(service.admission())
        with pytest.raises(Overloaded):
            held.enter_context(service.admission())
    with service.admission():  # slots come back
        pass
    assert _sample(registry, "watchkeeper_ingest_queue_drops_total", queue="in_flight") == 1


def test_accept_before_start_is_overloaded_not_a_hang(tmp_path: Path) -> None:
    service = IngestService(make_config(tmp_path), DuckDBStore(None), CollectorRegistry())
    with pytest.raises(Overloaded):
        asyncio.run(service.accept("default", _body(["x"]), "application/json", None))


def test_the_memory_of_a_burst_goes_back_once_the_writer_is_idle(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path, memory_limit_mb=256)
    config = make_config(tmp_path, batch_max_wait_ms=10, idle_release_s=0.2)
    service = IngestService(config, store, CollectorRegistry())
    service.start()
    try:
        names = [f"step {i}" for i in range(300)]
        _send(service, *(_body(names, seed=n) for n in range(1, 21)))
        assert service.flush(30)
        wal = path.with_name(path.name + ".wal")
        deadline = time.monotonic() + 30  # the writer gives the burst back 0.2 s after it
        while wal.exists() and wal.stat().st_size and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not wal.exists() or wal.stat().st_size == 0  # checkpointed, cache dropped
        assert store.memory_bytes() < 8 * 2**20
        assert store.count("default") == 300 * 20
    finally:
        service.stop()
    store.close()
