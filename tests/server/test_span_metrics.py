"""Span-derived RED metrics: what a stored batch adds to the Prometheus registry."""

from __future__ import annotations

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from watchkeeper.model import ColumnBatch, SpanBatch, SpanRow
from watchkeeper.server._span_metrics import DURATION_BUCKETS, BatchHistogram, SpanMetrics


def _span(i: int, outcome: str = "success", model: str | None = None) -> SpanRow:
    return SpanRow(
        project="p", trace_id=f"{i:032x}", span_id=f"{i:016x}", parent_span_id="",
        name="x", start_ns=i, duration_ns=(i + 1) * 1_000_000_000, service="svc",
        operation="llm" if model else "http", outcome=outcome, request_model=model,
        input_tokens=10 if model else None, cost_usd=0.5 if model else None,
    )  # fmt: skip


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_a_batch_counts_spans_durations_cost_and_tokens(columns: bool) -> None:
    registry = CollectorRegistry()
    metrics = SpanMetrics(registry)
    batches = [
        SpanBatch([_span(0), _span(1, "timeout"), _span(2, model="m"), _span(3, model="m")]),
        SpanBatch([_span(4)]),
    ]
    for batch in batches:  # ingest hands over columns; rows are taken too
        metrics.observe(ColumnBatch.of(batch, packed=False) if columns else batch)
    value = registry.get_sample_value
    http = {"project": "p", "service": "svc", "operation": "http"}
    assert value("watchkeeper_spans_total", {**http, "outcome": "success"}) == 2
    assert value("watchkeeper_spans_total", {**http, "outcome": "timeout"}) == 1
    assert value("watchkeeper_span_duration_seconds_count", http) == 3
    assert value("watchkeeper_span_duration_seconds_sum", http) == 1 + 2 + 5
    assert value("watchkeeper_span_duration_seconds_bucket", {**http, "le": "2.5"}) == 2
    by_model = {"project": "p", "service": "svc", "model": "m"}
    assert value("watchkeeper_cost_usd_total", by_model) == 1.0
    assert value("watchkeeper_tokens_total", {**by_model, "type": "input"}) == 20


def test_label_sets_past_the_cap_are_counted_not_kept() -> None:
    registry = CollectorRegistry()
    metrics = SpanMetrics(registry, max_series=1)
    metrics.observe(SpanBatch([_span(0), _span(1, "error"), _span(2, "error")]))
    assert registry.get_sample_value("watchkeeper_span_metrics_over_cap_total") == 2


def test_the_batch_histogram_exposes_what_a_prometheus_histogram_would() -> None:
    """Values on, just under and just over every bound, zero, and past the last bound:
    the same bucket, count and sum samples as `Histogram.observe` gives one at a time."""
    values = [0.0, 100.0, 1e9, *DURATION_BUCKETS]
    values += [b * (1 + 1e-12) for b in DURATION_BUCKETS]
    values += [b * (1 - 1e-12) for b in DURATION_BUCKETS]
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = BatchHistogram("h_seconds", "h", ("k",), DURATION_BUCKETS, ours_registry)
    theirs = Histogram("h_seconds", "h", ["k"], buckets=DURATION_BUCKETS, registry=theirs_registry)
    buckets = ours.buckets(pa.array(values)).to_pylist()
    for value, bucket in zip(values, buckets, strict=True):
        ours.add(("a",), bucket, 1, value)
        theirs.labels("a").observe(value)

    def samples(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return sorted(line for line in text.splitlines() if "_created" not in line)

    assert samples(ours_registry) == samples(theirs_registry)
