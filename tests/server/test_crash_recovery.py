"""Accepted means kept: SIGKILL the server mid-stream; every acknowledged span is there once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.eventually import eventually
from tests.server._process import ServerProcess

BATCH = 200


def _make_batches(n: int) -> list[list[ReadableSpan]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "crash-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("crash-test")
    for i in range(n * BATCH // 4):
        with tracer.start_as_current_span(f"request-{i}"):
            for j in range(3):
                with tracer.start_as_current_span(f"child-{j}"):
                    pass
    spans = list(memory.get_finished_spans())
    return [spans[k : k + BATCH] for k in range(0, len(spans), BATCH)]


def _send(url: str, batches: list[list[ReadableSpan]], acked: list[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=2)
    for batch in batches:
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            return  # the server is gone: what follows would only wait on retries
        acked.extend(batch)


def _stored_ids(url: str) -> Counter[tuple[str, str]]:
    seen: Counter[tuple[str, str]] = Counter()
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"range": "24h", "service": "crash-test", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{url}/api/v1/spans", params=params, timeout=30).json()
        seen.update((s["trace_id"], s["span_id"]) for s in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return seen


def _wait_count(url: str, expected_at_least: int, timeout_s: float = 60.0) -> int:
    params = {"range": "24h", "service": "crash-test"}
    return eventually(
        lambda: int(httpx.get(f"{url}/api/v1/summary", params=params, timeout=30).json()["count"]),
        timeout_s,
        0.3,
        until=lambda count: count >= expected_at_least,
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_sigkill_mid_stream_loses_no_acknowledged_span(tmp_path: Path, engine: str) -> None:
    store: tuple[str, ...] = ()
    if engine == "clickhouse":  # the engine in-process, its files beside the data directory
        store = ("--store", "clickhouse", "--clickhouse-url", f"chdb://{tmp_path / 'chdb'}")
    server = ServerProcess(tmp_path / "data", None, *store).start()
    batches = _make_batches(60)
    acked: list[ReadableSpan] = []
    sender = threading.Thread(target=_send, args=(server.url, batches, acked))
    try:
        sender.start()
        while len(acked) < 10 * BATCH:  # well into the stream
            time.sleep(0.01)
        server.kill()
        sender.join(timeout=120)
        assert len(acked) < len(batches) * BATCH, "the kill should have cut the stream"
        server = ServerProcess(tmp_path / "data", server.port, *store).start()
        _wait_count(server.url, len(acked))
        # Send the whole stream again: the exporter's retries after a crash re-send too.
        _send(server.url, batches[:5], [])
        stored = _stored_ids(server.url)
    finally:
        server.stop()
    expected = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in acked
    }
    missing = expected - stored.keys()
    duplicated = [k for k, n in stored.items() if n > 1]
    assert not missing, f"{len(missing)} acknowledged spans lost"
    assert not duplicated, f"{len(duplicated)} spans stored twice"
    # the engine asked for kept them
    assert (tmp_path / "data" / "spans.duckdb").exists() is (engine == "duckdb")
    assert (tmp_path / "chdb").exists() is (engine == "clickhouse")
