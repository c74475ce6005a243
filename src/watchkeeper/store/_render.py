"""Render every span-store query from a `SpanFilter`, in any `Dialect`.

Pure functions: each returns the SQL text and its bound parameters. The tables are the
logical schema every backend shares: `spans` (the `SpanRow` columns, times as BIGINT ns),
`payloads` (compressed, read by the backend itself), `scores` and `traces` (trace id ->
first/last span start, the access path of trace lookups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from watchkeeper.errors import ValidationError
from watchkeeper.model import ScoreRow, SpanRow
from watchkeeper.store._dialect import Dialect, Params
from watchkeeper.store._protocol import Dimension, SpanFilter

SPAN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SpanRow))
SCORE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ScoreRow))
QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
MAX_BUCKETS = 20_000  # a series or heatmap never has more time buckets than this

#: Column (or expression) each dimension groups by.
DIMENSIONS: dict[str, str] = {
    "service": "service",
    "environment": "environment",
    "operation": "operation",
    "provider": "provider",
    "model": "coalesce(response_model, request_model)",
    "route": "http_route",
    "user": "user_id",
    "session": "session_id",
    "agent": "agent_name",
    "tool": "tool_name",
    "outcome": "outcome",
    "feature": "feature",
    "error_type": "error_type",
}
ORDERS: tuple[str, ...] = ("count", "cost", "errors", "p95")
OUTCOME_ORDER: tuple[str, ...] = ("success", "error", "timeout", "fallback", "rejected")
SUMMARY_WIDTH = 18
#: The columns `summary_exprs` reads.
SUMMARY_INPUTS: tuple[str, ...] = (
    "outcome", "duration_ns", "start_ns", "cost_usd", "cost_source", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
)  # fmt: skip
_FAILED = "outcome IN ('error', 'timeout', 'rejected')"
#: A failed request: a root span that failed. A session's or user's `errors` counts these, as
#: the overview does, not its failed child spans (a retried call inside a request that answered).
_FAILED_REQUEST = f"parent_span_id = '' AND {_FAILED}"
#: When a span ended (at most int64: ingest refuses an end past it). A summary's `last_ns`
#: and an activity's are the latest end; `first_ns` is the earliest start.
END_NS = "start_ns + duration_ns"


@dataclass(frozen=True, slots=True)
class Query:
    """SQL text and the parameters it binds."""

    sql: str
    params: dict[str, object]


def dimension_expr(by: str) -> str:
    """The SQL expression of a dimension; ValidationError for an unknown one."""
    try:
        return DIMENSIONS[by]
    except KeyError:
        raise ValidationError(
            f"unknown dimension {by!r}; use one of: {', '.join(DIMENSIONS)}"
        ) from None


def list_conditions(f: SpanFilter, p: Params, *, span_columns: bool = True) -> list[str]:
    """`IN` conditions of the filter's value lists, models included.

    The spans table and the hourly rollup share these columns; `span_columns` adds the
    ones only spans have (route, agent, feature).
    """
    lists = [
        ("service", f.services),
        ("environment", f.environments),
        ("operation", f.operations),
        ("provider", f.providers),
        ("outcome", f.outcomes),
    ]
    if span_columns:
        lists += [("http_route", f.routes), ("agent_name", f.agents), ("feature", f.features)]
    cond = [f"{col} IN {p.many(vals)}" for col, vals in lists if vals]
    if f.models:
        cond.append(
            f"(response_model IN {p.many(f.models)} OR request_model IN {p.many(f.models)})"
        )
    return cond


def span_where(f: SpanFilter, p: Params) -> str:
    """The WHERE condition of a filter (without its text search, done on payloads)."""
    cond = [f"project = {p(f.project)}"]
    if f.start_ns is not None:
        cond.append(f"start_ns >= {p(f.start_ns)}")
    if f.end_ns is not None:
        cond.append(f"start_ns < {p(f.end_ns)}")
    if f.scope == "requests":
        cond.append("parent_span_id = ''")
    elif f.scope == "llm":
        cond.append("operation = 'llm'")
    cond += list_conditions(f, p)
    exact = (
        ("user_id", f.user_id),
        ("session_id", f.session_id),
        ("trace_id", f.trace_id),
        ("name", f.name),
    )
    cond += [f"{col} = {p(val)}" for col, val in exact if val is not None]
    if f.min_duration_ms is not None:
        cond.append(f"duration_ns >= {p(round(f.min_duration_ms * 1e6))}")
    if f.max_duration_ms is not None:
        cond.append(f"duration_ns <= {p(round(f.max_duration_ms * 1e6))}")
    return " AND ".join(cond)


def summary_exprs(d: Dialect, percentiles: bool = True) -> list[str]:
    """The select list `results.summary_from_row` reads (SUMMARY_WIDTH columns).

    Without `percentiles` the quantiles column is NULL: exact quantiles are the costliest
    part of a summary, and a ranking by cost or count does not need them.
    """
    tokens = ["input", "output", "cache_read", "cache_write", "reasoning"]
    return [
        "count(*)",
        *(d.count_if(f"outcome = '{o}'") for o in OUTCOME_ORDER),
        d.quantiles("duration_ns", QUANTILES) if percentiles else "NULL",
        "avg(duration_ns)",
        "max(duration_ns)",
        *(f"sum({t}_tokens)" for t in tokens),
        d.float_sum("cost_usd"),
        d.count_if("cost_source = 'missing'"),
        "min(start_ns)",
        f"max({END_NS})",
    ]


def summary_query(
    f: SpanFilter,
    d: Dialect,
    last_n: int | None = None,
    *,
    percentiles: bool = True,
    since: int | None = None,
    by_span: bool = False,
) -> Query:
    """Summary of the filtered spans, or of the `last_n` newest of them, of those starting
    at `since` or later (a window the engine prunes to). `by_span`: spans of one start are
    newest by span id, as the span list orders them, so the newest N are one set whatever
    the window (else any of them: on DuckDB the second key cost 1 ms of 4 at 2M spans)."""
    p = Params(d)
    source = f"spans WHERE {_search_where(f, p, None, since)}"
    if last_n is not None:
        if last_n < 1:
            raise ValidationError(f"last_n must be at least 1 (got {last_n})")
        cols = ", ".join(SUMMARY_INPUTS)  # not *: the top-N carries only what it sums
        order = "ORDER BY start_ns DESC" + (", span_id DESC" if by_span else "")
        source = f"(SELECT {cols} FROM {source} {order} LIMIT {p(last_n)}) AS newest"
    return Query(f"SELECT {', '.join(summary_exprs(d, percentiles))} FROM {source}", p.values)


def _order_expr(order: str, d: Dialect) -> str:
    exprs = {
        "count": "count(*)",
        "cost": d.float_sum("cost_usd"),
        "errors": d.count_if(_FAILED),
        "p95": d.quantile("duration_ns", 0.95),
    }
    try:
        return exprs[order]
    except KeyError:
        raise ValidationError(f"unknown order {order!r}; use one of: {', '.join(ORDERS)}") from None


def keys_in(key: str, keys: Sequence[str | None], p: Params) -> str:
    """`key` is one of `keys` (None among them: or NULL)."""
    named = [k for k in keys if k is not None]
    alts = [f"{key} IN {p.many(named)}"] if named else []
    alts += [f"{key} IS NULL"] if None in keys else []
    return f"({' OR '.join(alts) or 'false'})"


def breakdown_query(
    f: SpanFilter,
    d: Dialect,
    by: Dimension,
    limit: int,
    order: str,
    keys: Sequence[str | None] | None = None,
    *,
    percentiles: bool = True,
) -> Query:
    """Summary per value of `by`, top `limit` by `order` (errors = error+timeout+rejected).

    With `keys` (from `top_keys_query`), only those values are summarized.
    """
    p = Params(d)
    key = dimension_expr(by)
    where = span_where(f, p)
    if keys is not None:
        where += f" AND {keys_in(key, keys, p)}"
    sql = (
        f"SELECT {key} AS k, {', '.join(summary_exprs(d, percentiles))} FROM spans "
        f"WHERE {where} GROUP BY k "
        f"ORDER BY {_order_expr(order, d)} DESC NULLS LAST, k NULLS LAST LIMIT {p(_limit(limit))}"
    )
    return Query(sql, p.values)


def _limit(limit: int, most: int = 10_000) -> int:
    if not 1 <= limit <= most:
        raise ValidationError(f"limit must be between 1 and {most} (got {limit})")
    return limit


def check_buckets(f: SpanFilter, step_ns: int) -> None:
    """Refuse a step that is not positive or would make more than MAX_BUCKETS buckets."""
    if step_ns <= 0:
        raise ValidationError(f"step must be positive (got {step_ns / 1e9:g} s)")
    if f.start_ns is not None and f.end_ns is not None:
        buckets = (f.end_ns - f.start_ns) // step_ns
        if buckets > MAX_BUCKETS:
            raise ValidationError(
                f"step of {step_ns / 1e9:g} s makes {buckets} buckets over this range; "
                f"use a step that gives at most {MAX_BUCKETS}"
            )


def timeseries_query(
    f: SpanFilter,
    d: Dialect,
    step_ns: int,
    by: Dimension | None = None,
    keys: Sequence[str | None] = (),
) -> Query:
    """Summary per time bucket (and per key of `by`, restricted to `keys`)."""
    check_buckets(f, step_ns)
    p = Params(d)
    step = p(step_ns)
    bucket = f"{d.int_div('start_ns', step)} * {step}"
    where = span_where(f, p)
    key = "NULL" if by is None else dimension_expr(by)
    if by is not None:
        where += f" AND {keys_in(key, keys, p)}"
    sql = (
        f"SELECT {bucket} AS b, {key} AS k, {', '.join(summary_exprs(d))} FROM spans "
        f"WHERE {where} GROUP BY b, k ORDER BY b, k NULLS LAST"
    )
    return Query(sql, p.values)


def top_keys_query(
    f: SpanFilter, d: Dialect, by: Dimension, limit: int, order: str = "count"
) -> Query:
    """The top `limit` values of `by` by `order` (a series splits by them)."""
    p = Params(d)
    key = dimension_expr(by)
    sql = (
        f"SELECT {key} AS k FROM spans WHERE {span_where(f, p)} GROUP BY k "
        f"ORDER BY {_order_expr(order, d)} DESC NULLS LAST, k NULLS LAST "
        f"LIMIT {p(_limit(limit, 1000))}"
    )
    return Query(sql, p.values)


def check_heatmap(f: SpanFilter, step_ns: int, bounds_ns: Sequence[int]) -> None:
    """Refuse a heatmap of too many time buckets, or bounds not 1-100 increasing."""
    check_buckets(f, step_ns)
    if not 1 <= len(bounds_ns) <= 100 or list(bounds_ns) != sorted(set(bounds_ns)):
        raise ValidationError("bounds must be 1-100 increasing latency upper bounds in ms")


def heatmap_query(f: SpanFilter, d: Dialect, step_ns: int, bounds_ns: Sequence[int]) -> Query:
    """Span counts per (time bucket, latency bucket index); index len(bounds) = above all."""
    check_heatmap(f, step_ns, bounds_ns)
    p = Params(d)
    step = p(step_ns)
    whens = " ".join(f"WHEN duration_ns <= {p(b)} THEN {i}" for i, b in enumerate(bounds_ns))
    sql = (
        f"SELECT {d.int_div('start_ns', step)} * {step} AS b, "
        f"CASE {whens} ELSE {len(bounds_ns)} END AS l, count(*) FROM spans "
        f"WHERE {span_where(f, p)} GROUP BY b, l ORDER BY b, l"
    )
    return Query(sql, p.values)


KEY_COLUMNS: tuple[str, ...] = ("start_ns", "span_id", "trace_id")


def search_query(
    f: SpanFilter,
    d: Dialect,
    limit: int,
    after: tuple[int, str] | None = None,
    *,
    since: int | None = None,
    columns: Sequence[str] = SPAN_COLUMNS,
) -> Query:
    """Spans newest first (keyset on start_ns, span_id), strictly after the cursor `after`
    and starting at `since` or later (a window the engine prunes to); `columns` of each."""
    p = Params(d)
    sql = f"SELECT {', '.join(columns)} FROM spans WHERE {_search_where(f, p, after, since)} "
    sql += f"ORDER BY start_ns DESC, span_id DESC LIMIT {p(limit)}"
    return Query(sql, p.values)


def _search_where(
    f: SpanFilter, p: Params, after: tuple[int, str] | None, since: int | None
) -> str:
    where = span_where(f, p)
    if after is not None:
        start, span = p(after[0]), p(after[1])
        where += f" AND (start_ns < {start} OR (start_ns = {start} AND span_id < {span}))"
    if since is not None:
        where += f" AND start_ns >= {p(since)}"
    return where


def candidate_io_query(
    f: SpanFilter,
    d: Dialect,
    after: tuple[int, str] | None,
    oldest: tuple[int, str],
    newest: int,
) -> Query:
    """The text (`io`) of the filtered spans from `oldest` (start_ns, span_id)
    up to the cursor `after`, the newest starting at `newest`: the candidates a
    `search_query` returned, found again by a semi-join (no list of ids travels):
    (span_id, trace_id, io)."""
    p = Params(d)
    lo, hi = p(oldest[0]), p(newest)
    cand = (
        f"SELECT trace_id, span_id FROM spans WHERE {_search_where(f, p, after, None)} "
        f"AND start_ns <= {hi} AND (start_ns > {lo} OR (start_ns = {lo} AND span_id >= "
        f"{p(oldest[1])}))"
    )
    sql = (
        f"SELECT span_id, trace_id, io FROM payloads WHERE project = {p(f.project)} "
        f"AND start_ns BETWEEN {lo} AND {hi} AND (trace_id, span_id) IN ({cand})"
    )
    return Query(sql, p.values)


def newest_hour_query(project: str, d: Dialect) -> Query:
    """The newest hour holding spans of a project, from the hourly totals (NULL: none):
    the smallest hourly table that counts every span (ClickHouse, 2M spans: 2.4 ms, the
    bucketed rollup 4.7 ms)."""
    p = Params(d)
    sql = f"SELECT max(hour_ns) FROM totals_rollup WHERE project = {p(project)}"
    return Query(sql, p.values)


def spans_by_key_query(project: str, keys: Sequence[tuple[int, str, str]], d: Dialect) -> Query:
    """The spans of these keys (start_ns, span_id, trace_id) of one project, in any order."""
    p = Params(d)
    starts = [k[0] for k in keys]
    ids = p([k[1] for k in keys])
    sql = (
        f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE project = {p(project)} "
        f"AND start_ns BETWEEN {p(min(starts))} AND {p(max(starts))} "
        f"AND {d.contains(ids, 'span_id')}"
    )
    return Query(sql, p.values)


def trace_spans_query(
    project: str,
    trace_id: str,
    lo: int,
    hi: int,
    d: Dialect,
    limit: int | None = None,
    after: tuple[int, str] | None = None,
) -> Query:
    """Spans of a trace by start, `limit` of them after the keyset position `after`;
    the time range lets the engine skip most of the table."""
    p = Params(d)
    sql = (
        f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE project = {p(project)} "
        f"AND start_ns BETWEEN {p(lo)} AND {p(hi)} AND trace_id = {p(trace_id)}"
    )
    if after is not None:
        a, b = p(after[0]), p(after[1])
        sql += f" AND (start_ns > {a} OR (start_ns = {a} AND span_id > {b}))"
    sql += " ORDER BY start_ns, span_id"
    if limit is not None:
        sql += f" LIMIT {p(limit)}"
    return Query(sql, p.values)


def trace_count_query(project: str, trace_id: str, lo: int, hi: int, d: Dialect) -> Query:
    """How many spans a trace has."""
    p = Params(d)
    sql = (
        f"SELECT count(*) FROM spans WHERE project = {p(project)} "
        f"AND start_ns BETWEEN {p(lo)} AND {p(hi)} AND trace_id = {p(trace_id)}"
    )
    return Query(sql, p.values)


def scores_where(f: SpanFilter, p: Params, name: str | None = None) -> str:
    """Scores of the filter's project, created in its time range (and trace, name)."""
    cond = [f"project = {p(f.project)}"]
    if f.start_ns is not None:
        cond.append(f"created_ns >= {p(f.start_ns)}")
    if f.end_ns is not None:
        cond.append(f"created_ns < {p(f.end_ns)}")
    if f.trace_id is not None:
        cond.append(f"trace_id = {p(f.trace_id)}")
    if f.user_id is not None:
        cond.append(f"user_id = {p(f.user_id)}")
    if name is not None:
        cond.append(f"name = {p(name)}")
    return " AND ".join(cond)


PASS_LABELS = ("pass", "good", "positive")
LOW_LABELS = ("fail", "bad", "negative")


def scores_summary_query(f: SpanFilter, d: Dialect, name: str | None) -> Query:
    """Count, mean, pass share and low share per score name."""
    p = Params(d)
    # coalesce: a label-only score has a NULL value, and NULL conditions count as nothing
    passed = f"coalesce(value >= 0.5, lower(label) IN {p.many(PASS_LABELS)}, false)"
    low = f"coalesce(value < 0.5, lower(label) IN {p.many(LOW_LABELS)}, false)"
    sql = (
        f"SELECT name, count(*), avg(value), {d.count_if(passed)}, {d.count_if(low)} "
        f"FROM scores WHERE {scores_where(f, p, name)} GROUP BY name ORDER BY name"
    )
    return Query(sql, p.values)


def scores_query(f: SpanFilter, d: Dialect, limit: int) -> Query:
    """Newest scores first."""
    p = Params(d)
    sql = (
        f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE {scores_where(f, p)} "
        f"ORDER BY created_ns DESC, score_id LIMIT {p(_limit(limit))}"
    )
    return Query(sql, p.values)


def trace_scores_query(project: str, trace_id: str, d: Dialect) -> Query:
    """Every score of one trace, oldest first."""
    p = Params(d)
    sql = (
        f"SELECT {', '.join(SCORE_COLUMNS)} FROM scores WHERE project = {p(project)} "
        f"AND trace_id = {p(trace_id)} ORDER BY created_ns, score_id"
    )
    return Query(sql, p.values)


def activity_query(f: SpanFilter, d: Dialect, by: Dimension, limit: int) -> Query:
    """Sessions or users (`by`): traces, spans, failed requests, first start and last end,
    spend; the one active last first."""
    p = Params(d)
    key = dimension_expr(by)
    sql = (
        f"SELECT {key} AS k, count(DISTINCT trace_id), count(*), {d.count_if(_FAILED_REQUEST)}, "
        f"min(start_ns), max({END_NS}), coalesce({d.float_sum('cost_usd')}, 0), "
        "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0) "
        f"FROM spans WHERE {span_where(f, p)} AND {key} IS NOT NULL "
        f"GROUP BY k ORDER BY max({END_NS}) DESC, k LIMIT {p(_limit(limit))}"
    )
    return Query(sql, p.values)


def time_range_query(f: SpanFilter, d: Dialect) -> Query:
    """First and last start of the filtered spans."""
    p = Params(d)
    return Query(
        f"SELECT min(start_ns), max(start_ns) FROM spans WHERE {span_where(f, p)}", p.values
    )


def trace_payloads_query(
    project: str, trace_id: str, spans: Sequence[SpanRow], d: Dialect
) -> Query:
    """The payloads of these spans of one trace (ordered by start): the columns
    `decode_payload` reads."""
    p = Params(d)
    lo, hi = spans[0].start_ns, spans[-1].start_ns
    ids = p([s.span_id for s in spans])
    sql = (
        "SELECT project, trace_id, span_id, start_ns, io, meta FROM payloads "
        f"WHERE project = {p(project)} AND start_ns BETWEEN {p(lo)} AND {p(hi)} "
        f"AND trace_id = {p(trace_id)} AND {d.contains(ids, 'span_id')}"
    )
    return Query(sql, p.values)


def count_query(project: str | None, d: Dialect) -> Query:
    """Number of stored spans (of one project, or all)."""
    p = Params(d)
    where = "" if project is None else f" WHERE project = {p(project)}"
    return Query(f"SELECT count(*) FROM spans{where}", p.values)
