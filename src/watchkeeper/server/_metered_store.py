"""A `Store` that counts what it writes into the span-derived metrics and times its writes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

from watchkeeper.errors import StoreError
from watchkeeper.model import ScoreRow, SpanBatch
from watchkeeper.server._span_metrics import SpanMetrics
from watchkeeper.store import (
    Activity,
    Dimension,
    Group,
    Heatmap,
    Page,
    Point,
    ScoreSummary,
    SpanFilter,
    Store,
    Summary,
    TraceDetail,
)


class MeteredStore:
    """Wraps a store: writes feed `SpanMetrics`; queries are timed by kind."""

    def __init__(
        self,
        inner: Store,
        registry: CollectorRegistry,
        span_registry: CollectorRegistry | None = None,
    ) -> None:
        self.inner = inner
        # Per-project series on their own registry (when given); the cap counter is health.
        self.metrics = SpanMetrics(span_registry or registry, health=registry)
        self._query_seconds = Histogram(
            "watchkeeper_store_query_seconds",
            "Latency of store queries, by kind.",
            ["query"],
            registry=registry,
        )
        if hasattr(inner, "memory_bytes"):
            Gauge(
                "watchkeeper_store_memory_bytes",
                "Memory the store engine holds now (DuckDB: its buffer pool and the rest).",
                registry=registry,
            ).set_function(self._memory_bytes)

    def _memory_bytes(self) -> float:
        try:
            return float(self.inner.memory_bytes())  # type: ignore[attr-defined]
        except StoreError:  # closed or failing: the scrape still answers
            return float("nan")

    @property
    def payload_codec(self) -> Any:
        """The inner store's payload codec, if it offers one (see `DuckDBStore`)."""
        return getattr(self.inner, "payload_codec", None)

    def release_memory(self) -> bool:
        """The inner store's `release_memory`, where it has one (else nothing to do: True)."""
        release = getattr(self.inner, "release_memory", None)
        return bool(release()) if release is not None else True

    def write(self, batch: SpanBatch) -> int:
        """Store the batch, then count its new spans into the metrics."""
        new = self.inner.write(batch)
        self.metrics.observe(batch)
        return new

    def write_scores(self, scores: Sequence[ScoreRow]) -> None:
        """Store scores."""
        self.inner.write_scores(scores)

    def summary(
        self, f: SpanFilter, last_n: int | None = None, *, percentiles: bool = True
    ) -> Summary:
        """Timed `Store.summary`."""
        with self._query_seconds.labels("summary").time():
            return self.inner.summary(f, last_n, percentiles=percentiles)

    def breakdown(
        self,
        f: SpanFilter,
        by: Dimension,
        limit: int = 20,
        order: str = "count",
        *,
        percentiles: bool = True,
    ) -> list[Group]:
        """Timed `Store.breakdown`."""
        with self._query_seconds.labels("breakdown").time():
            return self.inner.breakdown(f, by, limit, order, percentiles=percentiles)

    def timeseries(
        self, f: SpanFilter, step_s: int, by: Dimension | None = None, limit: int = 10
    ) -> list[Point]:
        """Timed `Store.timeseries`."""
        with self._query_seconds.labels("timeseries").time():
            return self.inner.timeseries(f, step_s, by, limit)

    def heatmap(self, f: SpanFilter, step_s: int, bounds_ms: Sequence[float]) -> Heatmap:
        """Timed `Store.heatmap`."""
        with self._query_seconds.labels("heatmap").time():
            return self.inner.heatmap(f, step_s, bounds_ms)

    def search_spans(self, f: SpanFilter, limit: int = 50, cursor: str | None = None) -> Page:
        """Timed `Store.search_spans`."""
        with self._query_seconds.labels("search_spans").time():
            return self.inner.search_spans(f, limit, cursor)

    def trace(
        self, project: str, trace_id: str, limit: int = 500, cursor: str | None = None
    ) -> TraceDetail | None:
        """Timed `Store.trace`."""
        with self._query_seconds.labels("trace").time():
            return self.inner.trace(project, trace_id, limit, cursor)

    def scores_summary(self, f: SpanFilter, name: str | None = None) -> list[ScoreSummary]:
        """`Store.scores_summary`."""
        return self.inner.scores_summary(f, name)

    def scores(self, f: SpanFilter, limit: int = 100) -> list[ScoreRow]:
        """`Store.scores`."""
        return self.inner.scores(f, limit)

    def sessions(self, f: SpanFilter, limit: int = 50) -> list[Activity]:
        """`Store.sessions`."""
        return self.inner.sessions(f, limit)

    def users(self, f: SpanFilter, limit: int = 50) -> list[Activity]:
        """`Store.users`."""
        return self.inner.users(f, limit)

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """`Store.delete_before`."""
        return self.inner.delete_before(project, before_ns)

    def count(self, project: str | None = None) -> int:
        """`Store.count`."""
        return self.inner.count(project)

    def ping(self) -> None:
        """`Store.ping`."""
        started = time.perf_counter()
        self.inner.ping()
        self._query_seconds.labels("ping").observe(time.perf_counter() - started)

    def close(self) -> None:
        """`Store.close`."""
        self.inner.close()
