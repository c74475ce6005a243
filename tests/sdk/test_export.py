"""End to end through the real OTLP/HTTP exporter to a local receiver."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

import watchkeeper

from ._servers import OtlpReceiver, serve_asgi


@pytest.mark.slow
def test_spans_reach_an_otlp_receiver_with_key_project_and_resource() -> None:
    with OtlpReceiver() as receiver:
        registry = CollectorRegistry()
        watchkeeper.init(
            "export-svc",
            registry=registry,
            endpoint=receiver.url,
            api_key="wk_test_key",
            project="proj-a",
            environment="test",
            json_logs=False,
            raise_errors=True,
        )
        try:
            app = FastAPI()

            @app.get("/hello/{who}")
            async def hello(who: str) -> dict[str, str]:
                with watchkeeper.observe("chat", kind="llm") as span:
                    span.set_model("gpt-4o-mini", provider="openai")
                return {"hello": who}

            app.add_middleware(watchkeeper.WatchkeeperMiddleware)  # type: ignore[arg-type]
            with serve_asgi(app) as url:
                assert httpx.get(f"{url}/hello/bob").json() == {"hello": "bob"}
            assert watchkeeper.flush(5.0)
            receiver.wait_for(2)
        finally:
            watchkeeper.shutdown()
        assert sorted(receiver.span_names()) == ["GET /hello/{who}", "chat"]
        headers, request = receiver.requests[0]
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["authorization"] == "Bearer wk_test_key"
        assert lowered["x-watchkeeper-project"] == "proj-a"
        assert lowered["content-type"] == "application/x-protobuf"
        resource = {
            kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes
        }
        assert resource["service.name"] == "export-svc"
        assert resource["deployment.environment.name"] == "test"
        assert resource["watchkeeper.project"] == "proj-a"
        assert registry.get_sample_value("watchkeeper_sdk_spans_ended_total") == 2
        exported = {"result": "success"}
        assert registry.get_sample_value("watchkeeper_sdk_spans_exported_total", exported) == 2


class RefusingExporter(SpanExporter):
    """An exporter whose server always says no."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE


def test_failed_exports_are_counted() -> None:
    registry = CollectorRegistry()
    watchkeeper.init(
        "x", exporter=RefusingExporter(), registry=registry, json_logs=False, raise_errors=True
    )
    try:
        for _ in range(3):
            with watchkeeper.observe("work"):
                pass
        watchkeeper.flush()
    finally:
        watchkeeper.shutdown()
    failed = {"result": "failure"}
    assert registry.get_sample_value("watchkeeper_sdk_spans_ended_total") == 3
    assert registry.get_sample_value("watchkeeper_sdk_spans_exported_total", failed) == 3
