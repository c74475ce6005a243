"""RED metrics derived from the spans the server stores, for every service that sends them.

The names are a contract: the exported Prometheus rules and Grafana dashboards query them.
Label values come from low-cardinality columns only (never user, session or trace ids), and
the number of label sets is capped; spans past the cap are counted, not dropped silently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import HistogramMetricFamily, Metric

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


class BatchHistogram:
    """A Prometheus histogram fed a batch at a time: counts per bucket and their sum.

    `Histogram.observe` runs once per value (a lock and a scan of the bounds each): 1.6
    µs/span, a tenth of the store writer's time. Here a batch's values are put in buckets
    by numpy and the counts added per label set; it exposes what `Histogram` would (a
    value lands in the first bucket whose bound is >= it), without the `_created` series.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        bounds: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._doc, self._labels = name, documentation, labels
        self._bounds = np.array(bounds, dtype=np.float64)
        self._les = [repr(float(b)) for b in bounds] + ["+Inf"]  # as `Histogram` writes them
        self._counts: dict[tuple[str, ...], np.ndarray[Any, np.dtype[np.int64]]] = {}
        self._sums: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def buckets(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Each value's bucket (0 to len(bounds); the last is +Inf's alone)."""
        index = np.searchsorted(self._bounds, np.asarray(values, dtype=np.float64), "left")
        return pa.array(index.astype(np.int8))

    def add(self, key: tuple[str, ...], bucket: int, count: int, total: float) -> None:
        """`count` values, summing to `total`, in bucket `bucket` of label set `key`."""
        with self._lock:
            counts = self._counts.get(key)
            if counts is None:
                counts = self._counts[key] = np.zeros(len(self._les), dtype=np.int64)
                self._sums[key] = 0.0
            counts[bucket] += count
            self._sums[key] += total

    def describe(self) -> Iterator[Metric]:
        """The metric's name, for the registry's duplicate check."""
        yield HistogramMetricFamily(self._name, self._doc, labels=self._labels)

    def collect(self) -> Iterator[Metric]:
        """Cumulative buckets, count and sum of every label set."""
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labels)
        with self._lock:
            kept = [(k, c.tolist(), self._sums[k]) for k, c in self._counts.items()]
        for key, counts, total in kept:
            cumulative = accumulate(counts)
            family.add_metric(list(key), list(zip(self._les, cumulative, strict=True)), total)
        yield family


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
        self.duration = BatchHistogram(
            "watchkeeper_span_duration_seconds",
            "Duration of stored spans.",
            ("project", "service", "operation"),
            DURATION_BUCKETS,
            registry,
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
        seconds = pc.divide(pc.cast(table["duration_ns"], pa.float64()), 1e9)
        timed = table.select(list(_SPAN_KEY)).append_column("seconds", seconds)
        timed = timed.append_column("bucket", self.duration.buckets(seconds))
        spans = timed.group_by([*_SPAN_KEY, "bucket"], use_threads=False).aggregate(
            [("seconds", "count"), ("seconds", "sum")]
        )
        model = pc.coalesce(table["response_model"], table["request_model"])
        used = table.select(["project", "service", "cost_usd", *_TOKEN_COLUMNS])
        used = used.append_column("model", model).filter(pc.is_valid(model))
        models = used.group_by(list(_MODEL_KEY), use_threads=False).aggregate(
            [("project", "count"), ("cost_usd", "sum")] + [(c, "sum") for c in _TOKEN_COLUMNS]
        )
        by_key: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for group in spans.to_pylist():
            by_key.setdefault(tuple(group[k] for k in _SPAN_KEY), []).append(group)
        with self._lock:
            for key, groups in by_key.items():
                n = sum(g["seconds_count"] for g in groups)
                if not self._admit(key, n):
                    continue
                self.spans.labels(*key).inc(n)
                for g in groups:
                    self.duration.add(key[:3], g["bucket"], g["seconds_count"], g["seconds_sum"])
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
