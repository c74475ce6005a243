"""The rollups of the span store (hourly, and per minute for a busy day or less): what they
hold and how they are written, in either engine's dialect (`_rollup_query`: what they
answer). DuckDB's writer
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

Two more tables keep the same sums without latency buckets (so they answer no percentiles):
`totals_rollup` per the rollup's keys plus feature (40k rows at 1M spans a week, against
335k with buckets) answers sums-only summaries and breakdowns and gives every rollup summary
its sums, the bucketed `rollup` adding only the bucket counts; `user_rollup` per (project,
hour, service, environment, operation, outcome, root or not, user) answers per-user
rankings (2.2M rows at 10M spans a week and 47k users, against 5.9M spans to scan).
A query takes the first table in TABLES (smallest first) that answers it.

MINUTES holds the rollup's rows per minute for the last MINUTE_KEEP_NS (two days, by the
wall clock). A range of a day or less that holds MINUTE_FROM_SPANS spans or more is answered
from it (`_rollup_query`).


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

from watchkeeper.store._dialect import DUCKDB, Dialect
from watchkeeper.store._render import END_NS

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
TOKENS = ("input", "output", "cache_read", "cache_write", "reasoning")


def values(d: Dialect = DUCKDB) -> tuple[tuple[str, str, str], ...]:
    """(rollup column, its aggregate over spans, its aggregate over partial rollup rows)."""
    return (
        ("n", "count(*)", "sum(n)"),
        ("dur_sum", d.wide_sum("duration_ns"), "sum(dur_sum)"),
        ("dur_min", "min(duration_ns)", "min(dur_min)"),
        ("dur_max", "max(duration_ns)", "max(dur_max)"),
        *((f"{t}_tokens", d.wide_sum(f"{t}_tokens"), f"sum({t}_tokens)") for t in TOKENS),
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
WIDE_SUMS = ("dur_sum", *(f"{t}_tokens" for t in TOKENS))


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
