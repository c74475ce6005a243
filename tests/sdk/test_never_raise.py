"""The SDK never breaks the app: a failing span pipeline is logged once and counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from prometheus_client import CollectorRegistry

import watchkeeper


class BrokenProcessor(SpanProcessor):
    """A span processor that fails on every span, as a buggy exporter set-up would."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("processor bug")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor bug")


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[CollectorRegistry]:
    monkeypatch.delenv("WATCHKEEPER_RAISE_ERRORS", raising=False)
    registry = CollectorRegistry()
    watchkeeper.init(
        "broken",
        span_processor=BrokenProcessor(),
        registry=registry,
        json_logs=False,
        raise_errors=False,
    )
    yield registry
    watchkeeper.shutdown()


def test_a_broken_pipeline_never_reaches_the_app(
    broken: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @watchkeeper.observe(kind="tool")
    def add(a: int, b: int) -> int:
        return a + b

    @watchkeeper.observe()
    async def double(x: int) -> int:
        return x * 2

    @watchkeeper.guard("g", deadline=1.0, breaker=False)
    def guarded() -> str:
        return "ok"

    with caplog.at_level(logging.WARNING, logger="watchkeeper.sdk"):
        for _ in range(3):
            assert add(1, 2) == 3
            assert asyncio.run(double(2)) == 4
            assert guarded() == "ok"
            with watchkeeper.observe("block", kind="llm") as span:
                span.set_usage(1, 2)
    failures = broken.get_sample_value("watchkeeper_sdk_errors_total", {"kind": "observe.start"})
    assert failures is not None and failures >= 3
    logged = [r for r in caplog.records if "observe.start" in r.getMessage()]
    assert len(logged) == 1  # once per kind of failure


def test_the_same_failure_raises_under_tests() -> None:
    watchkeeper.init(
        "broken",
        span_processor=BrokenProcessor(),
        registry=CollectorRegistry(),
        json_logs=False,
        raise_errors=True,
    )
    try:
        with pytest.raises(RuntimeError, match="processor bug"), watchkeeper.observe("x"):
            pass
    finally:
        watchkeeper.shutdown()


def test_sampling_drops_spans_but_keeps_metrics() -> None:
    from .conftest import start_sdk

    sdk = start_sdk(sample_rate=0.0)
    try:
        for _ in range(5):
            with watchkeeper.observe("chat", kind="llm") as span:
                span.set_model("m", provider="p")
                span.set_usage(input_tokens=3)
        assert sdk.spans() == []
        labels = {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": "p",
            "gen_ai_request_model": "m",
            "error_type": "",
        }
        assert sdk.metric("gen_ai_client_operation_duration_seconds_count", labels) == 5
    finally:
        watchkeeper.shutdown()


class FailsAtEnd(SpanProcessor):
    """Starts spans fine, fails when they end."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("export bug")


def test_a_failure_at_span_end_still_restores_the_apps_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace

    monkeypatch.delenv("WATCHKEEPER_RAISE_ERRORS", raising=False)
    watchkeeper.init(
        "x", span_processor=FailsAtEnd(), registry=CollectorRegistry(), json_logs=False,
        raise_errors=False,
    )  # fmt: skip
    try:
        with watchkeeper.observe("outer"):
            with watchkeeper.observe("inner"):
                pass
            assert trace.get_current_span().is_recording()  # "outer" is current again
        assert not trace.get_current_span().get_span_context().is_valid
    finally:
        watchkeeper.shutdown()
