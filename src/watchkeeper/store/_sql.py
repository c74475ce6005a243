"""The span store's reads, written once for every SQL engine: `SqlStore` over an `Executor`.

Every query is rendered from its description (`_render`, the rollups' `_rollup`) in the
executor's `Dialect`, and its rows become the protocol's results (`_results`). An engine
module (`duckdb`, `clickhouse`) holds only what differs: the connection and its recovery,
DDL and migrations, bulk inserts, the writer, and the engine's access path to a trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Protocol

import zstandard

from watchkeeper.errors import ValidationError
from watchkeeper.model import PackedPayload, PayloadRow, ScoreRow, SpanRow
from watchkeeper.store import _render as r
from watchkeeper.store import _results as res
from watchkeeper.store import _rollup as ru
from watchkeeper.store import _rollup_query as rq
from watchkeeper.store._dialect import Dialect
from watchkeeper.store._payload import decode_payload
from watchkeeper.store._protocol import (
    Activity,
    Dimension,
    Group,
    Heatmap,
    Page,
    Point,
    ScoreSummary,
    SpanFilter,
    Summary,
    TraceDetail,
)
from watchkeeper.store._text_search import (
    TEXT_BUDGET,
    TEXT_CHUNK,
    TextSearch,
    window_start,
    window_width,
)
from watchkeeper.store._timed import Timer, timed, untimed

#: A span's (or payload's) key: a span sent again, or replayed from the spool, has the same.
RowKey = tuple[str, str, str]


def row_key(row: SpanRow | PayloadRow | PackedPayload) -> RowKey:
    """The key of a span or payload row."""
    return (row.project, row.trace_id, row.span_id)


def unique_rows(rows: Sequence[Any]) -> list[Any]:
    """The first row of each key, in order (a batch may hold a span twice)."""
    seen: dict[RowKey, Any] = {}
    for row in rows:
        seen.setdefault(row_key(row), row)
    return list(seen.values())


TRACE_PAGE_MAX = 5_000  # spans of one trace per page at most
TRACE_PAGE_BYTES = 16 * 1024 * 1024  # payload text per trace page, about
#: Dimensions of unbounded cardinality: a breakdown first picks the top keys with a cheap
#: aggregate, then computes percentiles for those only. Measured at 10M spans, 50k users
#: (zipf: the top 20 hold most spans), runs alternating: about 25% faster, not more.
#: From the per-user rollup (sums only) the same holds: ranking 46-81 ms, then the top 20
#: users' sums 70-97 ms, against 195-212 ms for every user's sums (10M spans, 7 days).
TWO_STAGE = frozenset({"user", "session"})


class Executor(Protocol):
    """Runs rendered queries on one engine (the seam between `SqlStore` and an engine)."""

    dialect: Dialect

    def rows(self, q: r.Query) -> list[tuple[Any, ...]]:
        """The rows of `q`; StoreError when the engine fails."""
        ...

    def trace_range_query(self, trace_id: str) -> r.Query:
        """The engine's access path to a trace: (first, last) span start of `trace_id` over
        every project, NULLs when there is no such trace."""
        ...

    def snapshot(self) -> AbstractContextManager[object]:
        """Around several queries of one answer: they see one state of the data where the
        engine can (a read transaction), so a page and its counts agree."""
        ...


def _within_budget(
    spans: Sequence[SpanRow], payloads: dict[str, PayloadRow], budget: int
) -> list[SpanRow]:
    """The first spans whose payload text fits in `budget` bytes (at least one span)."""
    used = 0
    for i, span in enumerate(spans):
        p = payloads.get(span.span_id)
        if p is not None:
            used += sum(len(v) for v in (p.input, p.output, p.attributes, p.events) if v)
        if used > budget and i:
            return list(spans[:i])
    return list(spans)


def check_limit(limit: int, most: int = 10_000) -> int:
    """`limit` when it is between 1 and `most`, else ValidationError."""
    if not 1 <= limit <= most:
        raise ValidationError(f"limit must be between 1 and {most} (got {limit})")
    return limit


class SqlStore:
    """Every read of the `Store` protocol over an `Executor`; engines add the writes.

    `use_rollup`: answer long (or busy) ranges from the rollup tables of `_rollup`, for an
    engine that keeps them; False answers every query from the spans (exact percentiles).
    """

    timer: Timer
    write_timer: Timer

    def __init__(
        self,
        executor: Executor,
        *,
        text_chunk: int = TEXT_CHUNK,
        text_budget: int = TEXT_BUDGET,
        use_rollup: bool = True,
        minute_from_spans: int = ru.MINUTE_FROM_SPANS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._executor = executor
        self.dialect = executor.dialect
        self._text = TextSearch(self._rows, self.dialect, text_chunk, text_budget)
        self.use_rollup = use_rollup
        self._minute_from_spans = minute_from_spans
        self._clock = clock
        self.timer = untimed  # the server's metrics set theirs
        self.write_timer = untimed
        #: newest-first reads in time windows (`_newest_spans`, `_newest_summary`)
        self.newest_windows = executor.dialect.newest_in_windows

    def _rows(self, q: r.Query) -> list[tuple[Any, ...]]:
        return self._executor.rows(q)

    @timed("summary")
    def summary(
        self, f: SpanFilter, last_n: int | None = None, *, percentiles: bool = True
    ) -> Summary:
        """Summary of the filtered spans (or of the `last_n` newest); p50-p99 if asked."""
        table = None if last_n is not None else self._rollup_for(f, None, percentiles=percentiles)
        if table is not None:
            shape = rq.Shape()
            if percentiles:
                q = rq.summaries_query(f, shape, table=table, d=self.dialect)
            else:
                q = rq.totals_query(f, shape, table, d=self.dialect)
            rows = self._rows(q)
            return res.summary_from_row(rows[0][2:]) if rows else Summary()
        if last_n is not None and self.newest_windows:
            with self._executor.snapshot():  # its rounds see one state
                return res.summary_from_row(self._newest_summary(f, last_n, percentiles))
        q = r.summary_query(f, self.dialect, last_n, percentiles=percentiles)
        return res.summary_from_row(self._rows(q)[0])

    def _newest_summary(self, f: SpanFilter, last_n: int, percentiles: bool) -> tuple[Any, ...]:
        """The summary row of the `last_n` newest spans, read from a time window of the
        newest hours (`_first_window`) that widens, from the top again, until it holds
        `last_n` of them or reaches the filter's start: the engine reads that window."""
        since, top = self._first_window(f, None, last_n)
        while True:
            q = r.summary_query(
                f, self.dialect, last_n, percentiles=percentiles, since=since, by_span=True
            )
            row = self._rows(q)[0]
            if since is None or row[0] >= last_n:
                return row
            assert top is not None  # a window has a top
            width = window_width(top - since, row[0], last_n, top - since)
            since = window_start(f, top, width)

    def _first_window(
        self, f: SpanFilter, below: int | None, want: int
    ) -> tuple[int | None, int | None]:
        """Where a newest-first read below `below` (a cursor's start) should start its first
        window, and the window's top: at the newest hour down to which the hourly totals
        count `want` spans of the filter (exact for a filter on their columns; for one on
        others an upper bound, and the read widens). None: the totals count fewer, read
        every span (what they do not count is read all the same)."""
        hours = self._rows(rq.newest_hours_query(f, below, self.dialect))
        top = below if below is not None or not hours else int(hours[0][0]) + ru.HOUR_NS
        if top is not None and f.end_ns is not None:
            top = min(top, f.end_ns)
        seen, start = 0, None  # spans counted, from the hour `start` up
        for hour, spans in hours:
            seen, start = seen + int(spans), int(hour)
            if seen >= want:
                break
        else:
            if len(hours) < rq.NEWEST_HOURS:  # fewer in all: a window would only widen
                return None, top
        assert top is not None and start is not None  # some hours were counted
        return window_start(f, top, top - start), top

    @timed("breakdown")
    def breakdown(
        self,
        f: SpanFilter,
        by: Dimension,
        limit: int = 20,
        order: str = "count",
        *,
        percentiles: bool = True,
    ) -> list[Group]:
        """Summaries per value of `by` (without p50-p99 when `percentiles` is False)."""
        if order not in r.ORDERS:
            raise ValidationError(f"unknown order {order!r}; use one of: {', '.join(r.ORDERS)}")
        with_p = percentiles or order == "p95"
        table = self._rollup_for(f, by, percentiles=with_p)
        if table is not None:
            shape, limit = rq.Shape(key=by), check_limit(limit)
            if with_p:  # only a table with latency buckets answers then
                q = rq.summaries_query(f, shape, order, limit, table, self.dialect)
            else:  # sums only: one GROUP BY over the rollup rows
                if by in TWO_STAGE:  # rank by one sum, then every sum of the top keys only
                    ranked = rq.top_keys_query(f, by, limit, order, table, self.dialect)
                    top = [row[0] for row in self._rows(ranked)]
                    if not top:
                        return []
                    shape = rq.Shape(key=by, keys=top)
                q = rq.totals_query(f, shape, table, order, limit, self.dialect)
            return [Group(row[0], res.summary_from_row(row[2:])) for row in self._rows(q)]
        keys: list[Any] | None = None
        if by in TWO_STAGE and order != "p95":  # summaries of the top keys only
            ranked = r.top_keys_query(f, self.dialect, by, limit, order)
            keys = [row[0] for row in self._rows(ranked)]
            if not keys:
                return []
        q = r.breakdown_query(f, self.dialect, by, limit, order, keys, percentiles=percentiles)
        return [Group(row[0], res.summary_from_row(row[1:])) for row in self._rows(q)]

    @timed("timeseries")
    def timeseries(
        self, f: SpanFilter, step_s: int, by: Dimension | None = None, limit: int = 10
    ) -> list[Point]:
        """Summaries per time bucket (buckets without spans are left out)."""
        f = self._bounded(f)
        table = self._rollup_for(f, by, percentiles=True)
        if table is not None and step_s * 10**9 % table.grain_ns == 0:  # whole hours (minutes)
            return self._rolled_series(f, step_s, by, limit, table)
        keys: list[str | None] = []
        if by is not None:
            keys = [row[0] for row in self._rows(r.top_keys_query(f, self.dialect, by, limit))]
            if not keys:
                return []
        rows = self._rows(r.timeseries_query(f, self.dialect, step_s * 1_000_000_000, by, keys))
        return [Point(int(row[0]), res.summary_from_row(row[2:]), row[1]) for row in rows]

    def _rollup_for(self, f: SpanFilter, by: str | None, *, percentiles: bool) -> ru.Table | None:
        """The rollup table that answers a query, or None: read the spans.

        Over more than a day, the smallest hourly table that answers it. Over a day or
        less, the per-minute rollup when the range holds too many spans to read them all
        (`minute_from_spans`); else the spans, for exact percentiles.
        """
        if not self.use_rollup:
            return None
        for table in ru.TABLES:
            if rq.eligible(f, by, table, percentiles=percentiles):
                return table
        if rq.eligible(f, by, ru.MINUTES, percentiles=percentiles, now_ns=self._clock()):
            (spans,) = self._rows(rq.count_query(f, ru.MINUTES, self.dialect))[0]
            if spans is not None and spans >= self._minute_from_spans:
                return ru.MINUTES
        return None

    def _rolled_series(
        self, f: SpanFilter, step_s: int, by: Dimension | None, limit: int, table: ru.Table
    ) -> list[Point]:
        keys: list[str | None] | None = None
        if by is not None:
            q = rq.top_keys_query(f, by, check_limit(limit, 1000), table=table, d=self.dialect)
            keys = [row[0] for row in self._rows(q)]
            if not keys:
                return []
        shape = rq.Shape(key=by, step_ns=step_s * 1_000_000_000, keys=keys)
        rows = self._rows(rq.summaries_query(f, shape, table=table, d=self.dialect))
        return [Point(int(row[1]), res.summary_from_row(row[2:]), row[0]) for row in rows]

    @timed("heatmap")
    def heatmap(self, f: SpanFilter, step_s: int, bounds_ms: Sequence[float]) -> Heatmap:
        """Span counts per time bucket and latency bucket (the last one: above every bound).

        From a rollup when one answers the range (as for a summary) in whole time buckets
        and the bounds snap to its latency buckets' edges: then `bounds_ms` are those edges.
        """
        step = step_s * 1_000_000_000
        bounds_ns = [round(b * 1e6) for b in bounds_ms]
        r.check_heatmap(f, step, bounds_ns)
        f = self._bounded(f)
        edges = rq.snapped_bounds(bounds_ms)  # None: the rollups cannot answer these bounds
        table = self._rollup_for(f, None, percentiles=True) if edges is not None else None
        if table is not None and step % table.grain_ns == 0 and edges is not None:
            rows = self._rows(rq.heatmap_query(f, step, edges, table, self.dialect))
            bounds_ms = [ru.GAMMA**k for k in edges]
        else:
            rows = self._rows(r.heatmap_query(f, self.dialect, step, bounds_ns))
        span = (0, 0)
        if f.start_ns is not None and f.end_ns is not None and rows:
            span = (f.start_ns // step * step, (f.end_ns - 1) // step * step)
        return res.heatmap_from_rows(rows, step, bounds_ms, span)

    def _bounded(self, f: SpanFilter) -> SpanFilter:
        """`f` with an open time range closed at its first/last span, so buckets are bounded."""
        if f.start_ns is not None and f.end_ns is not None:
            return f
        first, last = self._rows(r.time_range_query(f, self.dialect))[0]
        if first is None:
            return f  # nothing matches: every query answers empty
        start = first if f.start_ns is None else f.start_ns
        return replace(f, start_ns=start, end_ns=last + 1 if f.end_ns is None else f.end_ns)

    @timed("search_spans")
    def search_spans(self, f: SpanFilter, limit: int = 50, cursor: str | None = None) -> Page:
        """Spans newest first; with `f.text`, at most `text_budget` candidates per call."""
        if not 1 <= limit <= 1000:
            raise ValidationError(f"limit must be between 1 and 1000 (got {limit})")
        after = res.decode_cursor(cursor) if cursor else None
        if f.text:
            with self._executor.snapshot():  # its rounds and the page see one state
                return self._text.page(f, limit, after)
        if self.newest_windows:
            with self._executor.snapshot():  # its rounds see one state
                rows = self._newest_spans(f, limit + 1, after)
        else:
            rows = self._rows(r.search_query(f, self.dialect, limit + 1, after))
        items = [res.span_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(
            items, res.encode_cursor(items[-1].start_ns, items[-1].span_id) if more else None
        )

    def _newest_spans(
        self, f: SpanFilter, want: int, after: tuple[int, str] | None
    ) -> list[tuple[Any, ...]]:
        """The `want` newest spans after the cursor, read window by window below it (the
        first: `_first_window`), each next one wider (from the rate seen so far) until
        `want` are found or the filter's start is reached. A window bounds the spans from
        below, never from above: the hourly totals only place it, so totals behind the
        spans cost time, never spans."""
        since, top = self._first_window(f, None if after is None else after[0], want)
        width = 0 if since is None or top is None else top - since
        rows: list[tuple[Any, ...]] = []
        while True:
            q = r.search_query(f, self.dialect, want - len(rows), after, since=since)
            rows += self._rows(q)
            if since is None or len(rows) >= want:
                return rows
            assert top is not None  # a window has a top
            after = (since, "")  # below the window that ran out
            width = window_width(top - since, len(rows), want - len(rows), width)
            since = window_start(f, since, width)

    @timed("trace")
    def trace(
        self, project: str, trace_id: str, limit: int = 500, cursor: str | None = None
    ) -> TraceDetail | None:
        """A page of a trace, found through the `traces` side table; see `Store.trace`.

        Pages bound the answer: one trace of 340k spans was 338 MB of JSON in one piece.
        """
        limit = check_limit(limit, TRACE_PAGE_MAX)
        after = res.decode_cursor(cursor) if cursor else None
        with self._executor.snapshot():  # the page, its payloads and the span count agree
            return self._trace_page(project, trace_id, limit, after)

    def _trace_page(
        self, project: str, trace_id: str, limit: int, after: tuple[int, str] | None
    ) -> TraceDetail | None:
        lo, hi = self._rows(self._executor.trace_range_query(trace_id))[0]
        if lo is None:
            return None
        q = r.trace_spans_query(project, trace_id, lo, hi, self.dialect, limit + 1, after)
        spans = [res.span_from_row(row) for row in self._rows(q)]
        if not spans and after is None:
            return None
        more = len(spans) > limit
        spans = spans[:limit]
        payloads = self._trace_payloads(project, trace_id, spans)
        kept = _within_budget(spans, payloads, TRACE_PAGE_BYTES)
        more = more or len(kept) < len(spans)
        count = self._rows(r.trace_count_query(project, trace_id, lo, hi, self.dialect))[0][0]
        scores = [
            res.score_from_row(row)
            for row in self._rows(r.trace_scores_query(project, trace_id, self.dialect))
        ]
        last = kept[-1] if kept else None
        next_cursor = res.encode_cursor(last.start_ns, last.span_id) if more and last else None
        page = {s.span_id: payloads[s.span_id] for s in kept if s.span_id in payloads}
        return TraceDetail(trace_id, kept, page, scores, int(count), next_cursor)

    def _trace_payloads(
        self, project: str, trace_id: str, spans: Sequence[SpanRow]
    ) -> dict[str, PayloadRow]:
        if not spans:
            return {}
        q = r.trace_payloads_query(project, trace_id, spans, self.dialect)
        dz = zstandard.ZstdDecompressor()
        return {row[2]: decode_payload(row, dz) for row in self._rows(q)}

    def scores_summary(self, f: SpanFilter, name: str | None = None) -> list[ScoreSummary]:
        """Aggregates per score name."""
        rows = self._rows(r.scores_summary_query(f, self.dialect, name))
        return [res.score_summary_from_row(row) for row in rows]

    def scores(self, f: SpanFilter, limit: int = 100) -> list[ScoreRow]:
        """Newest scores first."""
        rows = self._rows(r.scores_query(f, self.dialect, limit))
        return [res.score_from_row(row) for row in rows]

    def sessions(self, f: SpanFilter, limit: int = 50) -> list[Activity]:
        """Sessions active in the range, most recent first."""
        rows = self._rows(r.activity_query(f, self.dialect, "session", limit))
        return [res.activity_from_row(row) for row in rows]

    def users(self, f: SpanFilter, limit: int = 50) -> list[Activity]:
        """Users active in the range, most recent first."""
        rows = self._rows(r.activity_query(f, self.dialect, "user", limit))
        return [res.activity_from_row(row) for row in rows]

    def count(self, project: str | None = None) -> int:
        """Number of stored spans."""
        return int(self._rows(r.count_query(project, self.dialect))[0][0])

    def ping(self) -> None:
        """Raise StoreError when the database does not answer."""
        self._rows(r.Query("SELECT 1", {}))
