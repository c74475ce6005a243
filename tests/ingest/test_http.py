"""The OTLP/HTTP receiver against real clients: the OpenTelemetry exporter and raw httpx."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable

import httpx
import orjson
import pytest
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.ingest.conftest import DATA, GatedStore, Receiver
from watchkeeper.server._roles import Role
from watchkeeper.store import SpanFilter


def _spans(n: int, service: str = "http-test") -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("ingest-tests")
    for i in range(n):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
                "user.id": f"user-{i % 3}",
            },
        ) as span:
            if i % 5 == 0:
                span.set_status(Status(StatusCode.ERROR, "boom"))
    return list(memory.get_finished_spans())


def _stored(rec: Receiver, service: str) -> int:
    assert rec.ingest.flush(30), "ingest did not drain"
    return rec.store.count("default") if service == "*" else _count_service(rec, service)


def _count_service(rec: Receiver, service: str) -> int:
    return rec.store.summary(SpanFilter("default", services=(service,))).count


@pytest.mark.slow
def test_real_exporter_protobuf_round_trip(receiver: Receiver) -> None:
    spans = _spans(25)
    exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=10)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert _stored(receiver, "http-test") == 25
    page = receiver.store.search_spans(SpanFilter("default", services=("http-test",)), limit=100)
    row = page.items[0]
    assert (row.operation, row.provider, row.request_model) == ("llm", "openai", "gpt-4o")
    assert row.cost_source == "estimated"
    assert row.cost_usd == pytest.approx(1000 * 2.5e-6 + 100 * 10e-6)
    assert sum(r.outcome == "error" for r in page.items) == 5
    assert receiver.metric("watchkeeper_ingest_spans_accepted_total") == 25
    assert receiver.metric("watchkeeper_ingest_requests_total", {"code": "200"}) == 1


@pytest.mark.slow
def test_real_exporter_gzip(receiver: Receiver) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{receiver.url}/v1/traces", timeout=10, compression=Compression.Gzip
    )
    assert exporter.export(_spans(10, "gzip-test")) is SpanExportResult.SUCCESS
    assert _stored(receiver, "gzip-test") == 10


@pytest.mark.slow
def test_json_body_and_json_partial_success(receiver: Receiver) -> None:
    doc = orjson.loads((DATA / "otlp" / "genai_v1_41.json").read_bytes())["request"]
    bad = dict(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0], spanId="abcd")
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    r = httpx.post(
        f"{receiver.url}/v1/traces",
        content=gzip.compress(orjson.dumps(doc)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert "span_id must be 8" in partial["errorMessage"]
    assert receiver.ingest.flush(30)
    assert (
        receiver.metric("watchkeeper_ingest_spans_rejected_total", {"reason": "invalid_span"}) == 1
    )


def _post(rec: Receiver, body: bytes, ctype: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{rec.url}/v1/traces", content=body, headers={"Content-Type": ctype, **headers}
    )


@pytest.mark.slow
def test_protobuf_partial_success(receiver: Receiver) -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i, (start, end) in enumerate([(10, 20), (30, 20), (40, 50)]):
        s = spans.add(name=f"s{i}", start_time_unix_nano=start, end_time_unix_nano=end)
        s.trace_id, s.span_id = bytes([7] * 16), bytes([i + 1] * 8)
    r = _post(receiver, request.SerializeToString(), "application/x-protobuf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans == 1
    assert "end_time_unix_nano is before" in answer.partial_success.error_message
    assert receiver.ingest.flush(30)
    assert receiver.store.count("default") == 2


@pytest.mark.slow
@pytest.mark.parametrize("ctype", ["application/x-protobuf", "application/json"])
def test_undecodable_body_is_400_with_status_message(receiver: Receiver, ctype: str) -> None:
    r = _post(receiver, b"\xff\x00 not a request", ctype)
    assert r.status_code == 400
    if ctype == "application/json":
        assert "not valid JSON" in r.json()["message"]
        assert r.json()["code"] == 3
    else:
        status = status_pb2.Status.FromString(r.content)
        assert "not a valid OTLP protobuf" in status.message
    assert receiver.metric("watchkeeper_ingest_requests_total", {"code": "400"}) == 1


@pytest.mark.slow
def test_oversized_bodies_are_413(make_receiver: Callable[..., Receiver]) -> None:
    rec = make_receiver(max_body_bytes=10_000)
    big = orjson.dumps({"resourceSpans": [], "pad": "x" * 20_000})
    assert _post(rec, big, "application/json").status_code == 413
    # A gzip bomb: tiny on the wire, over the limit once inflated; refused while inflating.
    bomb = gzip.compress(b'{"resourceSpans": [], "pad": "' + b"x" * 5_000_000 + b'"}')
    assert len(bomb) < 10_000
    r = _post(rec, bomb, "application/json", **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert "limit" in r.json()["message"]


@pytest.mark.slow
def test_wrong_content_type_is_415(receiver: Receiver) -> None:
    r = _post(receiver, b"hello", "text/plain")
    assert r.status_code == 415
    assert "application/x-protobuf" in r.json()["message"]


@pytest.mark.slow
def test_missing_key_is_401_when_keys_are_required(make_receiver: Callable[..., Receiver]) -> None:
    rec = make_receiver(auth_required=True)
    r = _post(rec, b"{}", "application/json")
    assert r.status_code == 401
    assert "API key" in r.json()["message"]
    _, token = rec.services.keys.create("team-a", role=Role.INGEST)
    exporter = OTLPSpanExporter(
        endpoint=f"{rec.url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
    )
    assert exporter.export(_spans(3, "keyed")) is SpanExportResult.SUCCESS
    assert rec.ingest.flush(30)
    assert rec.store.count("team-a") == 3


@pytest.mark.slow
def test_overload_gets_503_retry_after_and_the_exporter_retries(
    make_receiver: Callable[..., Receiver],
) -> None:
    store = GatedStore()
    rec = make_receiver(store=store, spool_max_backlog_bytes=1, batch_max_wait_ms=10)
    exporter = OTLPSpanExporter(endpoint=f"{rec.url}/v1/traces", timeout=20)
    assert exporter.export(_spans(5, "first")) is SpanExportResult.SUCCESS  # now a backlog
    r = _post(rec, b"{}", "application/json")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    threading.Timer(0.5, store.gate.set).start()  # the store catches up during the wait
    assert exporter.export(_spans(5, "second")) is SpanExportResult.SUCCESS
    # one 503 for the probe, one or more for the exporter (it retries until the writer
    # has caught up, which takes longer on a loaded machine)
    assert rec.metric("watchkeeper_ingest_requests_total", {"code": "503"}) >= 2
    assert rec.metric("watchkeeper_ingest_requests_total", {"code": "200"}) == 2
    assert rec.ingest.flush(30)
    assert store.inner.count("default") == 10
