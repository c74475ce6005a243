"""A third-party instrumentor wired to the receiver through the real OTLP exporter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.ingest.conftest import Receiver
from watchkeeper.model import SpanRow
from watchkeeper.store import SpanFilter


@contextlib.contextmanager
def instrumented(receiver: Receiver, instrumentor: Any, service: str) -> Iterator[None]:
    """`instrumentor` on, each span exported to `receiver` as service `service`, then off."""
    tracing = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=10)
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor.instrument(tracer_provider=tracing)
    try:
        yield
    finally:
        instrumentor.uninstrument()
        tracing.shutdown()


def stored(receiver: Receiver, service: str, count: int) -> list[SpanRow]:
    """The `count` stored spans of `service`, by start (asserts there are that many)."""
    assert receiver.ingest.flush(30), "ingest did not drain"
    page = receiver.store.search_spans(SpanFilter("default", services=(service,)), limit=100)
    assert len(page.items) == count, [s.name for s in page.items]
    return sorted(page.items, key=lambda s: s.start_ns)
