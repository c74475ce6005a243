"""The rollups of the span store (hourly, and per minute for a busy day or less): what they
hold and the queries they answer, rendered in either engine's dialect. DuckDB's writer
appends their rows (below); on ClickHouse materialized views do, into tables of the same
columns (`_clickhouse_schema`), and the engine merges the partial rows itself.

Each DuckDB `write` appends, in its own transaction, one GROUP BY of the batch's new spans: per
(project, hour, service, environment, operation, provider, request/response model, outcome,
root or not, latency bucket) the count, duration sum/min/max, token and cost sums, spans
missing a price, first start and last end. Rows of the same key are partial sums (one per batch)
until `compact_sql` merges them; every query sums them anyway.

Latency buckets are log-spaced: bucket 0 holds durations under 1 ms, bucket b >= 1 holds
[GAMMA**(b-1), GAMMA**b) ms, the last one everything from GAMMA**(MAX_BUCKET-1) ms (~48 h)
up. A histogram is stored as rows (one per non-empty bucket), not as a list per key: at 10M
spans, summing the 0.9M rows by bucket took 11.5 ms, unnesting 74k fixed 201-slot lists 92 ms
(201 `sum(hist[i])` columns 135 ms), sparse (bucket, count) lists 13.4 ms.

A query uses the rollup only when its answer stays right (`eligible`): a closed time range
longer than MIN_RANGE_NS (a day), every filter and group key a rollup column. Whole hours
come from the rollup, the partial hours at both edges from spans bucketed by the same SQL,
merged before the percentiles are taken. Counts, sums, averages, maxima and first/last times
are exact (sums of costs up to float rounding). Percentiles are approximate: each order
statistic is replaced by the geometric middle of its bucket clamped to the group's
[min, max], then interpolated as DuckDB's exact `quantile_cont` does; so the relative error
is at most REL_ERROR (sqrt(1.1) - 1 = 4.9%) for durations of 1 ms to ~48 h, and at most
0.5 ms below 1 ms.

MINUTES holds the rollup's rows per minute for the last MINUTE_KEEP_NS (two days, by the
wall clock). A range of a day or less that holds MINUTE_FROM_SPANS spans or more is answered
from it the same way (whole minutes from the table, the edges from spans), with the same
bounds; a quieter range still comes from the spans, exactly.

Two more tables keep the same sums without latency buckets (so they answer no percentiles):
`totals_rollup` per the rollup's keys plus feature (40k rows at 1M spans a week, against
335k with buckets) answers sums-only summaries and breakdowns and gives every rollup summary
its sums, the bucketed `rollup` adding only the bucket counts; `user_rollup` per (project,
hour, service, environment, operation, outcome, root or not, user) answers per-user
rankings (2.2M rows at 10M spans a week and 47k users, against 5.9M spans to scan).
A query takes the first table in TABLES (smallest first) that answers it.

When a write learns a trace's user or feature (`_trace_context`) after some of its spans
were rolled up without it, it moves them: a retracting partial row (negative count and sums,
NULL min/max/first/last) under the old key, a normal one under the new key. Counts and sums
stay exact; a key's min, max, first and last may still count spans that left it (bounds,
for the key without a user or feature only: a named key only gains spans) until the next
merge rebuilds such hours from their spans (`rebuild_sql`). Groups whose count sums to 0
are left out of every answer and dropped by `compact_sql`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from watchkeeper.errors import ValidationError
from watchkeeper.store._dialect import DUCKDB, Dialect, Params
from watchkeeper.store._protocol import SpanFilter
from watchkeeper.store._render import (
    END_NS,
    OUTCOME_ORDER,
    QUANTILES,
    Query,
    check_buckets,
    dimension_expr,
    keys_in,
    list_conditions,
    span_where,
)

HOUR_NS = 3600 * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000
#: Ranges up to a day keep the exact raw path (a day of spans is a fast scan, ~50 ms at 9M
#: spans a week); longer ones use the hourly rollup.
MIN_RANGE_NS = 24 * HOUR_NS
#: How long the per-minute rollup keeps its rows (by the wall clock): it answers ranges of a
#: day or less that start within this horizon.
MINUTE_KEEP_NS = 2 * 24 * HOUR_NS
#: A range of a day or less is read from the spans (exact percentiles) unless it holds at
#: least this many spans; then from the per-minute rollup. 1M spans cost ~15 ms per summary
#: from the spans; at 20k spans/s, 15 minutes hold 18M (~250 ms, every dashboard refresh).
MINUTE_FROM_SPANS = 1_000_000
GAMMA = 1.1  # ratio of a latency bucket's upper to lower bound
MAX_BUCKET = 200  # GAMMA**199 ms is about 48 hours
REL_ERROR = math.sqrt(GAMMA) - 1  # bound of a percentile's relative error
_TOKENS = ("input", "output", "cache_read", "cache_write", "reasoning")


def values(d: Dialect = DUCKDB) -> tuple[tuple[str, str, str], ...]:
    """(rollup column, its aggregate over spans, its aggregate over partial rollup rows)."""
    return (
        ("n", "count(*)", "sum(n)"),
        ("dur_sum", d.wide_sum("duration_ns"), "sum(dur_sum)"),
        ("dur_min", "min(duration_ns)", "min(dur_min)"),
        ("dur_max", "max(duration_ns)", "max(dur_max)"),
        *((f"{t}_tokens", d.wide_sum(f"{t}_tokens"), f"sum({t}_tokens)") for t in _TOKENS),
        ("cost_usd", "sum(cost_usd)", "sum(cost_usd)"),
        ("missing_price", d.count_if("cost_source = 'missing'"), "sum(missing_price)"),
        ("first_ns", "min(start_ns)", "min(first_ns)"),
        ("last_ns", f"max({END_NS})", "max(last_ns)"),  # max(start_ns) before migration 7
    )


VALUES = values()
#: Sums of int64 columns are HUGEINT: a few spans of extreme (but valid) durations or token
#: counts sum past int64, and a sum that cannot be stored would stop every write after it.
_VALUE_TYPES = (
    "n BIGINT NOT NULL, dur_sum HUGEINT, dur_min BIGINT, dur_max BIGINT, input_tokens HUGEINT, "
    "output_tokens HUGEINT, cache_read_tokens HUGEINT, cache_write_tokens HUGEINT, "
    "reasoning_tokens HUGEINT, cost_usd DOUBLE, missing_price BIGINT, first_ns BIGINT, "
    "last_ns BIGINT"
)
#: The HUGEINT columns (migration 6 widens them in files written before).
WIDE_SUMS = ("dur_sum", *(f"{t}_tokens" for t in _TOKENS))


#: Key columns that are not VARCHAR (NULL allowed unless said).
_KEY_TYPES = {
    "project": "VARCHAR NOT NULL",
    "hour_ns": "BIGINT NOT NULL",
    "minute_ns": "BIGINT NOT NULL",
    "is_root": "BOOLEAN",
    "bucket": "SMALLINT NOT NULL",
}


@dataclass(frozen=True, slots=True)
class Table:
    """A rollup table: its key columns, and the group keys and filters it can answer."""

    name: str
    keys: tuple[str, ...]  # project, time_key, then span columns (is_root, bucket derived)
    dimensions: frozenset[str]  # what a breakdown or series may group by
    #: value-list filters it answers (besides the range and the scope)
    filters: frozenset[str]
    grain_ns: int = HOUR_NS  # the time bucket of a row
    time_key: str = "hour_ns"  # the key column holding the bucket's start

    def time_sql(self, start: str = "start_ns", d: Dialect = DUCKDB) -> str:
        """The start of the row's time bucket, from a span start."""
        return f"{d.int_div(start, str(self.grain_ns))} * {self.grain_ns}"

    @property
    def buckets(self) -> bool:
        """Whether it keeps latency buckets (answers percentiles)."""
        return "bucket" in self.keys

    def ddl(self) -> str:
        """CREATE TABLE statement."""
        keys = ", ".join(f"{k} {_KEY_TYPES.get(k, 'VARCHAR')}" for k in self.keys)
        return f"CREATE TABLE {self.name} ({keys}, {_VALUE_TYPES})"


_SPAN_KEYS = (
    "project", "hour_ns", "service", "environment", "operation", "provider", "request_model",
    "response_model", "outcome", "is_root",
)  # fmt: skip
_SPAN_DIMENSIONS = frozenset(
    {"service", "environment", "operation", "provider", "model", "outcome"}
)
_SPAN_FILTERS = frozenset(
    {"services", "environments", "operations", "providers", "models", "outcomes"}
)
MAIN = Table("rollup", (*_SPAN_KEYS, "bucket"), _SPAN_DIMENSIONS, _SPAN_FILTERS)
USERS = Table(
    "user_rollup",
    (
        "project", "hour_ns", "service", "environment", "operation", "outcome", "is_root",
        "user_id",
    ),
    frozenset({"user"}),
    frozenset({"services", "environments", "operations", "outcomes"}),
)  # fmt: skip
TOTALS = Table(
    "totals_rollup",
    (*_SPAN_KEYS, "feature"),
    _SPAN_DIMENSIONS | {"feature"},
    _SPAN_FILTERS | {"features"},
)
#: Every hourly rollup table, smallest first: a query takes the first one that answers it.
TABLES = (TOTALS, USERS, MAIN)
#: MAIN per minute, kept MINUTE_KEEP_NS: a busy day or less without scanning every span.
#: No user or feature: trace contexts never move its rows.
MINUTES = Table(
    "minute_rollup",
    ("project", "minute_ns", *_SPAN_KEYS[2:], "bucket"),
    _SPAN_DIMENSIONS,
    _SPAN_FILTERS,
    grain_ns=MINUTE_NS,
    time_key="minute_ns",
)
#: The tables keyed by a trace's context (user, feature): `_trace_context` moves rows in them.
CONTEXT_TABLES = (USERS, TOTALS)
_LIST_FILTERS = (
    "services", "environments", "operations", "providers", "models", "outcomes", "features",
)  # fmt: skip


def bucket_sql(duration: str = "duration_ns") -> str:
    """The latency bucket of a duration in ns (the same SQL for rollup rows and edges)."""
    return (
        f"CASE WHEN {duration} < 1000000 THEN 0 ELSE least(CAST(floor(ln({duration} / 1e6) "
        f"/ ln({GAMMA!r})) AS INTEGER) + 1, {MAX_BUCKET}) END"
    )


def _span_keys(table: Table, d: Dialect) -> list[str]:
    exprs = {table.time_key: table.time_sql(d=d), "is_root": "parent_span_id = ''"}
    exprs["bucket"] = bucket_sql()
    return [f"{exprs.get(k, k)} AS {k}" for k in table.keys]


#: Columns a retracting row leaves NULL: every query takes their min or max.
_EXTREMES = frozenset({"dur_min", "dur_max", "first_ns", "last_ns"})


def _retracted(col: str, agg: str) -> str:
    return "NULL" if col in _EXTREMES else f"-{agg}"


def select_sql(
    source: str,
    where: str = "",
    table: Table = MAIN,
    *,
    retract: bool = False,
    d: Dialect = DUCKDB,
) -> str:
    """The rollup rows of the spans in `source` (a table, view or subquery), in the table's
    column order (a ClickHouse materialized view is this over `spans`).

    `retract`: rows that take these spans out of their keys instead (negative count and
    sums; their min, max, first and last stay with the key, a bound rather than exact).
    """
    cols = _span_keys(table, d) + [
        f"{_retracted(col, agg) if retract else agg} AS {col}" for col, agg, _ in values(d)
    ]
    where = f" WHERE {where}" if where else ""
    return f"SELECT {', '.join(cols)} FROM {source}{where} GROUP BY ALL"


def insert_sql(
    source: str,
    where: str = "",
    table: Table = MAIN,
    *,
    retract: bool = False,
    d: Dialect = DUCKDB,
) -> str:
    """Append the rollup rows of the spans in `source` (`select_sql`)."""
    return f"INSERT INTO {table.name} {select_sql(source, where, table, retract=retract, d=d)}"


def compact_sql(times: Sequence[int], table: Table = MAIN) -> tuple[str, ...]:
    """Statements that merge the partial rows of these hours (the table's time buckets)
    into one row per key."""
    inlist = ", ".join(str(int(h)) for h in times)
    merged = ", ".join([*table.keys, *(f"{agg} AS {col}" for col, _, agg in VALUES)])
    t = table.time_key
    return (
        f"CREATE TEMP TABLE wk_compact AS SELECT {merged} FROM {table.name} "
        f"WHERE {t} IN ({inlist}) GROUP BY ALL HAVING sum(n) > 0",
        f"DELETE FROM {table.name} WHERE {t} IN ({inlist})",
        f"INSERT INTO {table.name} SELECT * FROM wk_compact",
        "DROP TABLE wk_compact",
    )


def rebuild_sql(times: Sequence[int], table: Table = MAIN) -> tuple[str, ...]:
    """Statements that replace the rows of these hours (the table's time buckets) by the
    rollup of their spans."""
    inlist = ", ".join(str(int(h)) for h in times)
    last = max(times) + table.grain_ns - 1
    bound = f"start_ns BETWEEN {min(times)} AND {last}"  # zone maps
    return (
        f"DELETE FROM {table.name} WHERE {table.time_key} IN ({inlist})",
        insert_sql("spans", f"{bound} AND {table.time_sql()} IN ({inlist})", table),
    )


def eligible(
    f: SpanFilter,
    by: str | None = None,
    table: Table = MAIN,
    *,
    percentiles: bool = True,
    now_ns: int = 0,
) -> bool:
    """Whether `table` answers this filter (and group key) as the spans would: a range
    longer than a day for the hourly tables; for MINUTES, a day or less that starts within
    its horizon (`now_ns`: the wall clock) and spans more than two of its minutes."""
    if f.start_ns is None or f.end_ns is None:
        return False
    if table is MINUTES:
        horizon = now_ns - MINUTE_KEEP_NS + HOUR_NS  # an hour's margin for the pruning
        too_short = f.end_ns - f.start_ns <= 2 * MINUTE_NS
        if too_short or f.end_ns - f.start_ns > MIN_RANGE_NS or f.start_ns < horizon:
            return False
    elif f.end_ns - f.start_ns <= MIN_RANGE_NS:
        return False
    if by is not None and by not in table.dimensions:
        return False
    if percentiles and not table.buckets:
        return False
    if any(getattr(f, name) for name in _LIST_FILTERS if name not in table.filters):
        return False
    unsupported = (
        f.routes, f.agents, f.user_id, f.session_id, f.trace_id, f.name,
        f.min_duration_ms, f.max_duration_ms, f.text,
    )  # fmt: skip
    return not any(unsupported)


def count_query(f: SpanFilter, table: Table, d: Dialect = DUCKDB) -> Query:
    """How many spans of the project start in the time buckets the range touches (whatever
    the other filters): what reading the range from the spans would scan."""
    assert f.start_ns is not None and f.end_ns is not None
    p = Params(d)
    lo = f.start_ns // table.grain_ns * table.grain_ns
    t = table.time_key
    sql = (
        f"SELECT sum(n) FROM {table.name} "
        f"WHERE project = {p(f.project)} AND {t} >= {p(lo)} AND {t} < {p(f.end_ns)}"
    )
    return Query(sql, p.values)


def _rollup_where(f: SpanFilter, p: Params, lo: int, hi: int, table: Table) -> str:
    t = table.time_key
    cond = [f"project = {p(f.project)}", f"{t} >= {p(lo)}", f"{t} < {p(hi)}"]
    if f.scope == "requests":
        cond.append("is_root")
    elif f.scope == "llm":
        cond.append("operation = 'llm'")
    cond += list_conditions(f, p, span_columns=False)  # eligible() rules out the others
    if f.features:  # only a table that keeps the feature is eligible then
        cond.append(f"feature IN {p.many(f.features)}")
    return " AND ".join(cond)


@dataclass(frozen=True, slots=True)
class Shape:
    """What a rollup query groups by: a dimension (`key`) and/or time buckets (`step_ns`)."""

    key: str | None = None
    step_ns: int | None = None
    keys: Sequence[str | None] | None = None  # restrict `key` to these values


def _source(f: SpanFilter, p: Params, shape: Shape, table: Table = MAIN) -> str:
    """Rows of (k, b, bucket, outcome, values): whole hours (the table's time buckets) from
    `table`, the edges from spans."""
    assert f.start_ns is not None and f.end_ns is not None  # checked by `eligible`
    grain = table.grain_ns
    lo = -(-f.start_ns // grain) * grain
    hi = f.end_ns // grain * grain
    key = "NULL" if shape.key is None else dimension_expr(shape.key)
    step = None if shape.step_ns is None else p(shape.step_ns)
    d = p.dialect
    b = "NULL" if step is None else f"{d.int_div('start_ns', step)} * {step}"
    rb = "NULL" if step is None else f"{d.int_div(table.time_key, step)} * {step}"
    restrict = "" if shape.keys is None else f" AND {keys_in(key, shape.keys, p)}"
    cols = [col for col, _, _ in VALUES]
    bucket, edge_bucket = ("bucket", bucket_sql()) if table.buckets else ("NULL", "NULL")
    rollup = (
        f"SELECT {key} AS k, {rb} AS b, {bucket} AS bucket, outcome, {', '.join(cols)} "
        f"FROM {table.name} "
        f"WHERE {_rollup_where(f, p, lo, hi, table)}{restrict}"
    )
    raw_cols = [
        "1", "duration_ns", "duration_ns", "duration_ns", *(f"{t}_tokens" for t in _TOKENS),
        "cost_usd", "CAST(cost_source = 'missing' AS BIGINT)", "start_ns", END_NS,
    ]  # fmt: skip
    edges = [
        f"SELECT {key} AS k, {b} AS b, {edge_bucket} AS bucket, outcome, {', '.join(raw_cols)} "
        f"FROM spans WHERE {span_where(f, p)} AND start_ns {edge}{restrict}"
        for edge in (f"< {p(lo)}", f">= {p(hi)}")
    ]
    return " UNION ALL ".join([rollup, *edges])


def _rep(bucket: str) -> str:
    """A bucket's representative duration in ns: its geometric middle (0.5 ms for bucket 0)."""
    return f"CASE WHEN {bucket} = 0 THEN 5e5 ELSE pow({GAMMA!r}, {bucket} - 0.5) * 1e6 END"


def _quantile(i: int) -> str:
    """`quantile_cont` of QUANTILES[i] over the histogram, from a group's `g_` columns
    (`_order_columns`, `_sum_columns`): interpolate between the representatives of the
    buckets of its two order statistics, clamped to the group's [min, max]."""
    pos = f"({QUANTILES[i]!r} * (g_tot - 1))"

    def clamp(v: str) -> str:  # in DOUBLE: ClickHouse finds no type for Int64 and Float64
        return f"greatest(CAST(g_dmin AS DOUBLE), least(CAST(g_dmax AS DOUBLE), {v}))"

    lo, hi = clamp(_rep(f"g_lo{i}")), clamp(_rep(f"g_hi{i}"))
    return f"{lo} + ({hi} - {lo}) * ({pos} - floor{pos})"


def _sum_columns(d: Dialect) -> list[str]:
    """Per (k, b), straight from the source rows: counts by outcome and the other sums."""
    return [
        "sum(n) AS g_n",
        *(f"coalesce(sum(n) FILTER (WHERE outcome = '{o}'), 0) AS g_{o}" for o in OUTCOME_ORDER),
        "sum(dur_sum) / sum(n) AS g_avg",
        "max(dur_max) AS g_dmax",
        "min(dur_min) AS g_dmin",
        *(f"sum({t}_tokens) AS g_{t}" for t in _TOKENS),
        f"{d.float_sum('cost_usd')} AS g_cost",
        "sum(missing_price) AS g_missing",
        "min(first_ns) AS g_first",
        "max(last_ns) AS g_last",
    ]


def _order_columns() -> list[str]:
    """Per (k, b) over the cumulative histogram: for each quantile the buckets holding its
    two order statistics."""
    return [
        "max(tot) AS g_tot",
        *(
            f"min(bucket) FILTER (WHERE cum > {fn}({q!r} * (tot - 1))) AS g_{name}{i}"
            for i, q in enumerate(QUANTILES)
            for fn, name in (("floor", "lo"), ("ceil", "hi"))
        ),
    ]


def _summary_cols(percentiles: bool = True) -> list[str]:
    """The SUMMARY_WIDTH columns `summary_from_row` reads, over the `g_` columns."""
    qs = ", ".join(_quantile(i) for i in range(len(QUANTILES))) if percentiles else ""
    return [
        "g_n",
        *(f"g_{o}" for o in OUTCOME_ORDER),
        f"[{qs}]" if percentiles else "NULL",
        "g_avg",
        "g_dmax",
        *(f"g_{t}" for t in _TOKENS),
        "g_cost",
        "g_missing",
        "g_first",
        "g_last",
    ]


_ORDERS = {
    "count": "g_n",
    "cost": "g_cost",
    "errors": "g_error + g_timeout + g_rejected",
    "p95": _quantile(QUANTILES.index(0.95)),
}


def _ordered(sql: str, p: Params, order: str | None, limit: int | None) -> str:
    if order is not None:
        sql += f" ORDER BY {_ORDERS[order]} DESC NULLS LAST, k NULLS LAST"
    else:
        sql += " ORDER BY b, k NULLS LAST"
    if limit is not None:
        sql += f" LIMIT {p(limit)}"
    return sql


def summaries_query(
    f: SpanFilter,
    shape: Shape,
    order: str | None = None,
    limit: int | None = None,
    table: Table = MAIN,
    d: Dialect = DUCKDB,
) -> Query:
    """Summaries per (k, b) from the rollup and the edges: k, b, then the summary columns.

    From the hourly tables, the sums come from the bucket-less TOTALS rows (every filter and
    key of MAIN is one of TOTALS); the percentiles from MAIN's (k, b, bucket) counts only.
    Carrying every sum through the per-bucket rows cost twice as much (7-day series at 1M
    spans: 27 ms). MINUTES (a day at most) gives both.
    """
    if shape.step_ns is not None:
        check_buckets(f, shape.step_ns)
    sums = TOTALS if table is MAIN else table
    p = Params(d)
    same = "s.k IS NOT DISTINCT FROM o.k AND s.b IS NOT DISTINCT FROM o.b"
    sql = (
        f"WITH s AS (SELECT k, b, {', '.join(_sum_columns(d))} "
        f"FROM ({_source(f, p, shape, sums)}) GROUP BY k, b HAVING sum(n) > 0), "
        f"h AS (SELECT k, b, bucket, sum(n) AS n FROM ({_source(f, p, shape, table)}) "
        "GROUP BY k, b, bucket), "
        "w AS (SELECT *, sum(n) OVER (PARTITION BY k, b ORDER BY bucket) AS cum, "
        "sum(n) OVER (PARTITION BY k, b) AS tot FROM h), "
        f"o AS (SELECT k, b, {', '.join(_order_columns())} FROM w GROUP BY k, b) "
        f"SELECT s.k AS k, s.b AS b, {', '.join(_summary_cols())} FROM s JOIN o ON {same}"
    )
    return Query(_ordered(sql, p, order, limit), p.values)


def totals_query(
    f: SpanFilter,
    shape: Shape,
    table: Table = MAIN,
    order: str | None = None,
    limit: int | None = None,
    d: Dialect = DUCKDB,
) -> Query:
    """`summaries_query` without percentiles (NULL): one GROUP BY, no histogram to walk.

    Any rollup table answers it; order is count, cost or errors.
    """
    if shape.step_ns is not None:
        check_buckets(f, shape.step_ns)
    if order == "p95":
        raise ValidationError("order p95 needs percentiles")
    p = Params(d)
    sql = (
        f"WITH s AS (SELECT k, b, {', '.join(_sum_columns(d))} "
        f"FROM ({_source(f, p, shape, table)}) GROUP BY k, b HAVING sum(n) > 0) "
        f"SELECT k, b, {', '.join(_summary_cols(percentiles=False))} FROM s"
    )
    return Query(_ordered(sql, p, order, limit), p.values)


_ERRORS = "sum(n) FILTER (WHERE outcome IN ('error', 'timeout', 'rejected'))"


def _row_order(order: str, d: Dialect) -> str:
    """An order over rows that still carry their outcome (the edges and rollup rows)."""
    return {"count": "sum(n)", "cost": d.float_sum("cost_usd"), "errors": _ERRORS}[order]


def top_keys_query(
    f: SpanFilter,
    by: str,
    limit: int,
    order: str = "count",
    table: Table = MAIN,
    d: Dialect = DUCKDB,
) -> Query:
    """The top `limit` values of `by` by count, cost or errors, from the rollup and edges."""
    p = Params(d)
    sql = (
        f"SELECT k FROM ({_source(f, p, Shape(key=by), table)}) GROUP BY k HAVING sum(n) > 0 "
        f"ORDER BY {_row_order(order, d)} DESC NULLS LAST, k NULLS LAST LIMIT {p(limit)}"
    )
    return Query(sql, p.values)


#: Hours `newest_hours_query` returns at most: enough to place a first window, few to send.
NEWEST_HOURS = 48


def newest_hours_query(f: SpanFilter, below: int | None, d: Dialect = DUCKDB) -> Query:
    """The newest NEWEST_HOURS hours (starting before `below`, in the filter's range) that
    hold spans of the filter by the hourly totals, newest first: (hour_ns, spans). A filter
    on what the totals do not keep (user, route, duration...) is left out, so the spans
    counted are then more than the filter's: a first window placed by them may hold too few."""
    p = Params(d)
    lo = -(2**63) if f.start_ns is None else f.start_ns // HOUR_NS * HOUR_NS
    hi = min(x for x in (below, f.end_ns, 2**63 - 1) if x is not None)
    sql = (
        f"SELECT hour_ns, sum(n) AS spans FROM {TOTALS.name} "
        f"WHERE {_rollup_where(f, p, lo, hi, TOTALS)} GROUP BY hour_ns HAVING sum(n) > 0 "
        f"ORDER BY hour_ns DESC LIMIT {NEWEST_HOURS}"
    )
    return Query(sql, p.values)
