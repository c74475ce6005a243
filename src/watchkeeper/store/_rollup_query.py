"""The queries the span rollups answer (`_rollup`: what they hold), in either engine's
dialect.

A query uses the rollup only when its answer stays right (`eligible`): a closed time range
longer than MIN_RANGE_NS (a day), every filter and group key a rollup column. Whole hours
come from the rollup, the partial hours at both edges from spans bucketed by the same SQL,
merged before the percentiles are taken. Counts, sums, averages, maxima and first/last times
are exact (sums of costs up to float rounding). Percentiles are approximate: each order
statistic is replaced by the geometric middle of its bucket clamped to the group's
[min, max], then interpolated as DuckDB's exact `quantile_cont` does; so the relative error
is at most REL_ERROR (sqrt(1.1) - 1 = 4.9%) for durations of 1 ms to ~48 h, and at most
0.5 ms below 1 ms.

A heatmap from a rollup counts whole latency buckets, so its bounds move to the nearest
bucket edges (`snapped_bounds`, at most 4.9% away) and the answer says so; bounds under
1 ms, or two that share an edge, leave it to the spans.

From the per-minute rollup (MINUTES, kept two days by the wall clock), a range of a day or
less that holds MINUTE_FROM_SPANS spans or more is answered the same way (whole minutes from
the table, the edges from spans), with the same bounds; a quieter range still comes from the
spans, exactly.
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
from watchkeeper.store._rollup import (
    GAMMA,
    HOUR_NS,
    MAIN,
    MAX_BUCKET,
    MIN_RANGE_NS,
    MINUTE_KEEP_NS,
    MINUTE_NS,
    MINUTES,
    TOKENS,
    TOTALS,
    VALUES,
    Table,
    bucket_sql,
)

_LIST_FILTERS = (
    "services", "environments", "operations", "providers", "models", "outcomes", "features",
)  # fmt: skip


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
        "1", "duration_ns", "duration_ns", "duration_ns", *(f"{t}_tokens" for t in TOKENS),
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
        *(f"sum({t}_tokens) AS g_{t}" for t in TOKENS),
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
        *(f"g_{t}" for t in TOKENS),
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


def snapped_bounds(bounds_ms: Sequence[float]) -> list[int] | None:
    """For each latency bound, the bucket edge nearest it in log scale: k where GAMMA**k ms
    is the upper edge of bucket k (so the rollup answers "under GAMMA**k ms" exactly). None
    when a bound lies below 1 ms or past the last edge, or two bounds share an edge."""
    edges = [round(math.log(b) / math.log(GAMMA)) if b > 0 else -1 for b in bounds_ms]
    if any(not 0 <= k < MAX_BUCKET for k in edges) or len(set(edges)) != len(edges):
        return None
    return edges


def heatmap_query(
    f: SpanFilter, step_ns: int, edges: Sequence[int], table: Table = MINUTES, d: Dialect = DUCKDB
) -> Query:
    """Span counts per (time bucket, band) from a bucketed table and the edges' spans, as
    `_render.heatmap_query` answers them: band i holds the latency buckets up to `edges[i]`
    (`snapped_bounds`), band len(edges) the rest."""
    check_buckets(f, step_ns)
    p = Params(d)
    bands = " ".join(f"WHEN bucket <= {int(k)} THEN {i}" for i, k in enumerate(edges))
    sql = (
        f"SELECT b, CASE {bands} ELSE {len(edges)} END AS l, sum(n) "
        f"FROM ({_source(f, p, Shape(step_ns=step_ns), table)}) "
        "GROUP BY b, l HAVING sum(n) > 0 ORDER BY b, l"
    )
    return Query(sql, p.values)
