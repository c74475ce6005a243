"""RED metrics derived from the spans the server stores, for every service that sends them.

The names are a contract: the exported Prometheus rules and Grafana dashboards query them.
Label values come from low-cardinality columns only (never user, session or trace ids), and
the number of label sets is capped; spans past the cap are counted, not dropped silently.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from watchkeeper.model import SpanBatch

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


class SpanMetrics:
    """Counts stored spans into Prometheus metrics on the registry it is given."""

    def __init__(self, registry: CollectorRegistry, max_series: int = 5_000) -> None:
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
            registry=registry,
        )

    def _admit(self, key: tuple[str, ...]) -> bool:
        if key in self._seen:
            return True
        if len(self._seen) >= self._max_series:
            self.over_cap.inc()
            return False
        self._seen.add(key)
        return True

    def observe(self, batch: SpanBatch) -> None:
        """Count every span of a stored batch."""
        with self._lock:
            for s in batch.spans:
                key = (s.project, s.service, s.operation, s.outcome)
                if not self._admit(key):
                    continue
                self.spans.labels(*key).inc()
                self.duration.labels(s.project, s.service, s.operation).observe(s.duration_ns / 1e9)
                model = s.response_model or s.request_model
                if model is None:
                    continue
                if not self._admit((s.project, s.service, model)):
                    continue
                if s.cost_usd:
                    self.cost.labels(s.project, s.service, model).inc(s.cost_usd)
                for kind, column in TOKEN_TYPES:
                    n = getattr(s, column)
                    if n:
                        self.tokens.labels(s.project, s.service, model, kind).inc(n)
