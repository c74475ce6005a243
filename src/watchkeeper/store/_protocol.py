"""The `Store` seam: what every span-store backend (DuckDB, ClickHouse/chDB) provides.

Queries take a `SpanFilter` and return plain dataclasses, so the HTTP API, the alert
engine, the UI and the reports all read the same numbers. Durations are milliseconds in
results; times are nanoseconds since the Unix epoch in filters and rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from watchkeeper.model import ColumnBatch, PayloadRow, ScoreRow, SpanBatch, SpanRow
from watchkeeper.store._timed import Timer

#: Columns one may group or break down by (all low-cardinality, or paged when not).
Dimension = Literal[
    "service",
    "environment",
    "operation",
    "provider",
    "model",  # response_model, else request_model
    "route",
    "user",
    "session",
    "agent",
    "tool",
    "outcome",
    "feature",
    "error_type",
]

#: Which spans a query counts: root spans of traces ("requests"), every span, or model calls.
Scope = Literal["requests", "spans", "llm"]


@dataclass(frozen=True, slots=True)
class SpanFilter:
    """Which spans a query looks at. Empty tuples and `None` mean "no restriction"."""

    project: str
    start_ns: int | None = None
    end_ns: int | None = None
    scope: Scope = "spans"
    services: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # matches response_model or request_model
    outcomes: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    user_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    name: str | None = None  # exact span name
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    text: str | None = None  # substring of input/output payloads (case-insensitive)


@dataclass(slots=True)
class Summary:
    """Counts by outcome, latency percentiles, tokens and cost over the filtered spans."""

    count: int = 0
    success: int = 0
    errors: int = 0
    timeouts: int = 0
    fallbacks: int = 0
    rejected: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    avg_ms: float | None = None
    max_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    missing_price: int = 0  # spans that used a model whose price we do not know
    first_ns: int | None = None  # the earliest span start
    last_ns: int | None = None  # the latest span end (start + duration)

    @property
    def success_rate(self) -> float | None:
        """Share of spans whose outcome is success or fallback (the user got an answer)."""
        return None if self.count == 0 else (self.success + self.fallbacks) / self.count

    def rate(self, outcome: str) -> float | None:
        """Share of spans with the given outcome."""
        if self.count == 0:
            return None
        return {
            "success": self.success,
            "error": self.errors,
            "timeout": self.timeouts,
            "fallback": self.fallbacks,
            "rejected": self.rejected,
        }[outcome] / self.count


@dataclass(slots=True)
class Group:
    """One row of a breakdown: the dimension's value and the summary of its spans."""

    key: str | None
    summary: Summary


@dataclass(slots=True)
class Point:
    """One bucket of a time series (`key` set when the series is split by a dimension)."""

    bucket_ns: int
    summary: Summary
    key: str | None = None


@dataclass(slots=True)
class Heatmap:
    """Counts of spans per (time bucket, latency bucket); `bounds_ms` are upper bounds."""

    step_ns: int
    bucket_starts_ns: list[int]
    bounds_ms: list[float]
    counts: list[list[int]]  # counts[time_index][latency_index]


@dataclass(slots=True)
class Page:
    """A page of spans, newest first; pass `next_cursor` back to get the next page."""

    items: list[SpanRow]
    next_cursor: str | None = None


@dataclass(slots=True)
class TraceDetail:
    """A whole trace: every span (ordered by start), their payloads and scores."""

    trace_id: str
    spans: list[SpanRow]
    payloads: dict[str, PayloadRow]  # by span_id
    scores: list[ScoreRow] = field(default_factory=list)
    span_count: int = 0  # spans of the whole trace (`spans` may be one page of them)
    next_cursor: str | None = None  # where the next page starts, when there is one


@dataclass(slots=True)
class ScoreSummary:
    """Aggregate of one score name: how many, the mean, and the share at or above a pass mark."""

    name: str
    count: int
    avg: float | None
    pass_rate: float | None  # share of scores >= 0.5 (or label in {"pass","good","positive"})
    low_share: float | None  # share of scores < 0.5


@dataclass(slots=True)
class Activity:
    """A session or a user: how many traces and spans, when first and last seen, spend."""

    key: str
    traces: int
    spans: int
    errors: int  # failed requests: root spans with outcome error, timeout or rejected
    first_ns: int  # the earliest span start
    last_ns: int  # the latest span end
    cost_usd: float
    input_tokens: int
    output_tokens: int


@runtime_checkable
class Store(Protocol):
    """A span store. One writer thread calls `write`; any thread may query.

    `timer(kind)` wraps each query of that kind (summary, breakdown, timeseries, heatmap,
    search_spans, trace), `write_timer(part)` each part of a write (the engine names its
    parts): whoever watches the store sets them (`_timed`).
    """

    timer: Timer
    write_timer: Timer

    def write(self, batch: SpanBatch | ColumnBatch) -> int:
        """Store spans and payloads; idempotent on (project, trace_id, span_id).

        Ingest hands over `ColumnBatch`es (rows as columns); a `SpanBatch` of row objects
        is taken too. Returns the number of spans that were new.
        """
        ...

    def write_scores(self, scores: Sequence[ScoreRow]) -> None:
        """Store scores; idempotent on score_id."""
        ...

    def summary(
        self, f: SpanFilter, last_n: int | None = None, *, percentiles: bool = True
    ) -> Summary:
        """Summarize the filtered spans, or only the `last_n` newest of them.

        Without `percentiles` p50-p99 are None (the costliest part of a summary).
        """
        ...

    def breakdown(
        self,
        f: SpanFilter,
        by: Dimension,
        limit: int = 20,
        order: str = "count",
        *,
        percentiles: bool = True,
    ) -> list[Group]:
        """Summaries per value of `by`, the top `limit` by `order` (count, cost, errors, p95).

        With `percentiles=False` the p50-p99 fields are left None: a ranking by cost or count
        then skips the one expensive part of the scan.
        """
        ...

    def timeseries(
        self, f: SpanFilter, step_s: int, by: Dimension | None = None, limit: int = 10
    ) -> list[Point]:
        """Summaries per time bucket of `step_s` seconds (and per value of `by`, top `limit`)."""
        ...

    def heatmap(self, f: SpanFilter, step_s: int, bounds_ms: Sequence[float]) -> Heatmap:
        """Latency distribution per time bucket; its `bounds_ms` are those counted by (a
        rollup's: the bucket edges nearest `bounds_ms`)."""
        ...

    def search_spans(self, f: SpanFilter, limit: int = 50, cursor: str | None = None) -> Page:
        """Spans matching the filter, newest first, paged."""
        ...

    def trace(
        self, project: str, trace_id: str, limit: int = 500, cursor: str | None = None
    ) -> TraceDetail | None:
        """One page of a trace's spans by start (at most `limit`, fewer when their payloads
        pass the page's byte budget) with their payloads and the trace's scores, or None."""
        ...

    def scores_summary(self, f: SpanFilter, name: str | None = None) -> list[ScoreSummary]:
        """Aggregates per score name over scores created in the filter's time range."""
        ...

    def scores(self, f: SpanFilter, limit: int = 100) -> list[ScoreRow]:
        """Newest scores in the filter's time range (and trace, when set)."""
        ...

    def sessions(self, f: SpanFilter, limit: int = 50) -> list[Activity]:
        """Sessions active in the time range, most recent first."""
        ...

    def users(self, f: SpanFilter, limit: int = 50) -> list[Activity]:
        """Users active in the time range, most recent first."""
        ...

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """Retention: drop spans, payloads and scores older than `before_ns`; count dropped."""
        ...

    def count(self, project: str | None = None) -> int:
        """Number of spans stored (for one project, or all)."""
        ...

    def ping(self) -> None:
        """Run a trivial query; raise StoreError when the store cannot answer."""
        ...

    def close(self) -> None:
        """Flush and release the store's files."""
        ...
