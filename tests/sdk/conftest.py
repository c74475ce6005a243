"""Fixtures of the SDK tests: a real SDK set-up exporting to OpenTelemetry's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import watchkeeper
from tests.eventually import eventually


@dataclass
class Sdk:
    """An initialised SDK: its exporter (finished spans) and its metrics registry."""

    exporter: InMemorySpanExporter
    registry: CollectorRegistry

    def spans(self) -> list[ReadableSpan]:
        """Spans finished so far, in end order."""
        return list(self.exporter.get_finished_spans())

    def span(self, name: str, wait_s: float = 5.0) -> ReadableSpan:
        """The one finished span called `name` (waiting a little for a server's span to end)."""
        found = eventually(lambda: [s for s in self.spans() if s.name == name], wait_s, 0.01)
        assert len(found) == 1, f"{len(found)} spans named {name!r} in {self.names()}"
        return found[0]

    def wait_count(self, name: str, count: int, wait_s: float = 5.0) -> None:
        """Wait until `count` spans called `name` have ended (servers end spans after replying)."""
        eventually(lambda: sum(s.name == name for s in self.spans()), wait_s, 0.01,
                   until=lambda n: n >= count)  # fmt: skip

    def names(self) -> list[str]:
        """Names of the finished spans."""
        return [s.name for s in self.spans()]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """A sample value from the registry."""
        return self.registry.get_sample_value(name, labels or {})


def start_sdk(**options: Any) -> Sdk:
    """Initialise the SDK with an in-memory exporter; options go to `watchkeeper.init`."""
    exporter = InMemorySpanExporter()
    registry = CollectorRegistry()
    options.setdefault("json_logs", False)
    options.setdefault("raise_errors", True)
    watchkeeper.init(
        "test-svc",
        registry=registry,
        span_processor=SimpleSpanProcessor(exporter),
        **options,
    )
    return Sdk(exporter, registry)


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    """The SDK initialised for one test, shut down after it."""
    yield start_sdk()
    watchkeeper.shutdown()


@pytest.fixture
def sdk_capture() -> Iterator[Sdk]:
    """The SDK with content capture (and redaction) on."""
    yield start_sdk(capture_content=True)
    watchkeeper.shutdown()
