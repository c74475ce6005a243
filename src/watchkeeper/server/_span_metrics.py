"""RED metrics derived from the spans the server stores, for every service that sends them.

The names are a contract: the exported Prometheus rules and Grafana dashboards query them.
Label values come from low-cardinality columns only (never user, session or trace ids), and
the number of label sets is capped; spans past the cap are counted, not dropped silently.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, Counter, Histogram

from watchkeeper.model import ColumnBatch, SpanBatch
from watchkeeper.store import span_table

#: Latency buckets (seconds): HTTP semconv's, plus the 8 s default deadline.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 8.0, 10.0, 30.0,
)  # fmt: skip
TOKEN_TYPES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)
_TOKEN_COLUMNS = tuple(column for _, column in TOKEN_TYPES)
_SPAN_KEY = ("project", "service", "operation", "outcome")
_MODEL_KEY = ("project", "service", "model")


class SpanMetrics:
    """Counts stored spans into Prometheus metrics on the registry it is given.

    Every series but the cap counter carries a `project` label; the cap counter, which
    names no project, goes on `health` when given (the server's open registry).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        max_series: int = 5_000,
        *,
        health: CollectorRegistry | None = None,
    ) -> None:
        self._max_series = max_series
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()
        self.spans = Counter(
            "watchkeeper_spans",
            "Spans stored, by project, service, operation and outcome.",
            ["project", "service", "operation", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "watchkeeper_span_duration_seconds",
            "Duration of stored spans.",
            ["project", "service", "operation"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.cost = Counter(
            "watchkeeper_cost_usd",
            "Cost of model calls in USD (reported or estimated).",
            ["project", "service", "model"],
            registry=registry,
        )
        self.tokens = Counter(
            "watchkeeper_tokens",
            "Tokens used by model calls, by type.",
            ["project", "service", "model", "type"],
            registry=registry,
        )
        self.over_cap = Counter(
            "watchkeeper_span_metrics_over_cap",
            "Spans not counted in span-derived metrics because the label-set cap was reached.",
            registry=health or registry,
        )

    def _admit(self, key: tuple[str, ...], spans: int) -> bool:
        if key in self._seen:
            return True
        if len(self._seen) >= self._max_series:
            self.over_cap.inc(spans)
            return False
        self._seen.add(key)
        return True

    def observe(self, batch: SpanBatch | ColumnBatch) -> None:
        """Count every span of a stored batch.

        Spans are grouped by label set first (an Arrow group-by over the batch's columns, no
        object per span), so `.labels()` (a locked dict lookup) runs once per label set and
        batch: this runs in the store's writer thread, on the ingest hot path.
        """
        table = span_table(batch)
        if not table.num_rows:
            return
        spans = table.group_by(list(_SPAN_KEY), use_threads=False).aggregate(
            [("duration_ns", "list")]
        )
        model = pc.coalesce(table["response_model"], table["request_model"])
        used = table.select(["project", "service", "cost_usd", *_TOKEN_COLUMNS])
        used = used.append_column("model", model).filter(pc.is_valid(model))
        models = used.group_by(list(_MODEL_KEY), use_threads=False).aggregate(
            [("project", "count"), ("cost_usd", "sum")] + [(c, "sum") for c in _TOKEN_COLUMNS]
        )
        with self._lock:
            for group in spans.to_pylist():
                key = tuple(group[k] for k in _SPAN_KEY)
                durations = group["duration_ns_list"]
                if not self._admit(key, len(durations)):
                    continue
                self.spans.labels(*key).inc(len(durations))
                histogram = self.duration.labels(*key[:3])
                for ns in durations:
                    histogram.observe(ns / 1e9)
            for group in models.to_pylist():
                key = tuple(group[k] for k in _MODEL_KEY)
                if self._admit(key, group["project_count"]):
                    self._count_model_use(key, group)

    def _count_model_use(self, key: tuple[str, ...], sums: dict[str, Any]) -> None:
        cost = sums["cost_usd_sum"]
        if cost:
            self.cost.labels(*key).inc(cost)
        for kind, column in TOKEN_TYPES:
            n = sums[f"{column}_sum"]
            if n:
                self.tokens.labels(*key, kind).inc(n)
