"""Span export with accounting: spans ended, exported and failed are counted as metrics.

The batch processor's queue is bounded (OpenTelemetry drops spans when it is full); counting
what went in and what came out makes those drops visible: ended - exported - failed is what
was dropped or is still queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from watchkeeper.sdk._metrics import SdkMetrics


class CountingExporter(SpanExporter):
    """Delegates to an exporter and counts the spans it exported or failed to export."""

    def __init__(self, inner: SpanExporter, metrics: SdkMetrics) -> None:
        self.inner = inner
        self._ok = metrics.spans_exported.labels("success")
        self._failed = metrics.spans_exported.labels("failure")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export a batch and count it by result."""
        try:
            result = self.inner.export(spans)
        except Exception:
            self._failed.inc(len(spans))
            raise
        (self._ok if result == SpanExportResult.SUCCESS else self._failed).inc(len(spans))
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


class CountingBatchProcessor(BatchSpanProcessor):
    """OpenTelemetry's batch processor, counting the sampled spans handed to it."""

    def __init__(self, exporter: SpanExporter, metrics: SdkMetrics) -> None:
        super().__init__(CountingExporter(exporter, metrics))
        self._ended = metrics.spans_ended

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span, then queue it for export."""
        self._ended.inc()
        super().on_end(span)
