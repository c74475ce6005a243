"""The ClickHouse layout of the span store's logical schema (the same columns as DuckDB).

- `spans`: narrow analytic columns, `ReplacingMergeTree` partitioned by UTC day, ordered by
  (project, hour, service, start, trace, span): every dashboard query reads one project's
  time range, a service filter narrows it further, and the key ends in the span's identity,
  so a span stored twice (a replay racing the writer's key check, two replicas) collapses
  on merge. Bloom filters on trace, user and session ids serve the exact-match filters.
- `payloads`: the text and documents, apart, ordered by (project, start, trace,
  span) since version 3 (a Bloom filter on trace ids): read only when a trace is opened
  (its time range) or text searched (the window of spans a search examines).
- `traces`: the trace-id access path (first and last span start per trace id), an
  `AggregatingMergeTree` ordered by id and filled by a materialized view on `spans`, so a
  trace lookup reads a few granules, then one time range of `spans`.
- `trace_context`: each trace's user, session and feature (`_clickhouse_context`).
- `scores`; `schema_version` records the migrations applied (`migrate`).
- the rollups of `_rollup` (hourly, per minute, totals, per user): `AggregatingMergeTree`
  tables of partial rows filled by materialized views on `spans` (see "Rollups" below).

Retention is a TTL on each table (`ttl_only_drop_parts`: whole days are dropped, never
rewritten); `ttl_statements` sets it for the configured number of days.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import fields

from watchkeeper.errors import StoreError
from watchkeeper.model import ScoreRow, SpanRow
from watchkeeper.store import _clickhouse_context as _context
from watchkeeper.store import _rollup as ru
from watchkeeper.store._dialect import CLICKHOUSE
from watchkeeper.store._duckdb_schema import sql_type

_CH = {"BIGINT": "Int64", "DOUBLE": "Float64", "INTEGER": "Int32", "VARCHAR": "String"}
_NOT_NULL = {
    "project", "trace_id", "span_id", "parent_span_id", "name", "start_ns", "duration_ns",
    "service", "environment", "span_kind", "operation", "status_code", "outcome", "cost_source",
    "score_id", "created_ns", "source",
}  # fmt: skip
_LOW_CARDINALITY = {
    "project", "service", "environment", "span_kind", "operation", "status_code", "outcome",
    "cost_source", "provider", "request_model", "response_model",
}  # fmt: skip
#: Column codecs, chosen by measurement (`python -m bench.query --engine clickhouse --bytes`,
#: docs/scale.md): the key's time deltas are small, counters fit in few bits (T64), hex ids
#: and repeated strings compress about twice as well with ZSTD as with the default LZ4;
#: ZSTD(3) only where it measured smaller than ZSTD(1). The payload blobs are their JSON
#: under 4 KiB, a zstd frame each above (`_payload.RAW_MAX`), so the column's codec is
#: what compresses most of them. When every text blob was a frame, a second pass on
#: distinct documents still took 3% off the text (ZSTD(1); ZSTD(3) 5%, at twice the CPU on
#: a wide column) and 54% off the small attribute documents (ZSTD(3): their keys repeat
#: from span to span).
CODECS = {
    "start_ns": "Delta, ZSTD(1)",
    **dict.fromkeys(
        ("duration_ns", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_tokens", "reasoning_tokens", "http_status_code"), "T64, ZSTD(1)"
    ),
    **dict.fromkeys(("name", "user_id", "session_id", "http_route"), "ZSTD(3)"),
}  # fmt: skip
_DEFAULT_CODEC = "ZSTD(1)"
#: Seconds since the epoch of a nanosecond column, as the DateTime TTLs and partitions take.
_SECONDS = "toDateTime(intDiv({col}, 1000000000), 'UTC')"
#: Days a trace's lookup row outlives the spans (a trace's last span may start later).
TRACE_MARGIN_DAYS = 1


def _day(col: str) -> str:
    return f"toYYYYMMDD({_SECONDS.format(col=col)})"


def _column(name: str, score: bool = False) -> str:
    kind = _CH[sql_type(name)]
    if name not in _NOT_NULL or (score and name == "span_id"):
        kind = f"Nullable({kind})"
    if name in _LOW_CARDINALITY:
        kind = f"LowCardinality({kind})"
    return f"{name} {kind} CODEC({CODECS.get(name, _DEFAULT_CODEC)})"


def _spans() -> str:
    cols = ", ".join(_column(f.name) for f in fields(SpanRow))
    indexes = ", ".join(
        f"INDEX {c}_bloom {c} TYPE bloom_filter(0.001) GRANULARITY 1"
        for c in ("trace_id", "user_id", "session_id")
    )
    return (
        f"CREATE TABLE IF NOT EXISTS spans ({cols}, {indexes}) ENGINE = ReplacingMergeTree "
        f"PARTITION BY {_day('start_ns')} "
        "ORDER BY (project, intDiv(start_ns, 3600000000000), service, start_ns, trace_id, span_id) "
        # block number/offset columns: trace contexts fill stored spans by lightweight UPDATE
        "SETTINGS ttl_only_drop_parts = 1, enable_block_number_column = 1, "
        "enable_block_offset_column = 1"
    )


#: The payloads' order: by trace at version 1; by start since version 3, so a text search
#: reads the payloads of the time window it examines (by trace, the candidates of one
#: window lay in every granule of their day); a trace opens by its time range and the
#: Bloom filter on its id.
PAYLOADS_BY_TRACE = "project, trace_id, span_id"
PAYLOADS_BY_START = "project, start_ns, trace_id, span_id"


def _payloads(order: str = PAYLOADS_BY_START, name: str = "payloads") -> str:
    index = (
        "INDEX trace_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1"
        if order == PAYLOADS_BY_START
        else "INDEX start_minmax start_ns TYPE minmax GRANULARITY 1"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (project LowCardinality(String), "
        "trace_id String CODEC(ZSTD(1)), span_id String CODEC(ZSTD(1)), "
        "start_ns Int64 CODEC(T64, ZSTD(1)), io Nullable(String) CODEC(ZSTD(1)), "
        f"meta Nullable(String) CODEC(ZSTD(3)), {index}) "
        f"ENGINE = ReplacingMergeTree PARTITION BY {_day('start_ns')} "
        f"ORDER BY ({order}) SETTINGS ttl_only_drop_parts = 1"
    )


#: A table a migration builds anew under this suffix, then exchanges with the old one.
_REBUILT = "_new"


def text_search_statements() -> tuple[str, ...]:
    """Migration 3: the payloads copied into start order. Each statement may run again
    after a crash: a copy left behind is dropped first, and the exchange is atomic."""
    return (
        f"DROP TABLE IF EXISTS payloads{_REBUILT}",
        _payloads(PAYLOADS_BY_START, f"payloads{_REBUILT}"),
        f"INSERT INTO payloads{_REBUILT} SELECT * FROM payloads",
        f"EXCHANGE TABLES payloads AND payloads{_REBUILT}",
        f"DROP TABLE payloads{_REBUILT}",
    )


def _scores() -> str:
    cols = ", ".join(_column(f.name, score=True) for f in fields(ScoreRow))
    return (
        f"CREATE TABLE IF NOT EXISTS scores ({cols}, "
        "INDEX trace_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1) "
        "ENGINE = ReplacingMergeTree "
        f"PARTITION BY toYYYYMM({_SECONDS.format(col='created_ns')}) "
        "ORDER BY (project, created_ns, score_id)"
    )


_TRACES = (
    "CREATE TABLE IF NOT EXISTS traces (trace_id String CODEC(ZSTD(1)), "
    "min_start_ns SimpleAggregateFunction(min, Int64) CODEC(ZSTD(1)), "
    "max_start_ns SimpleAggregateFunction(max, Int64) CODEC(ZSTD(1))) "
    f"ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM({_SECONDS.format(col='min_start_ns')}) "
    "ORDER BY trace_id"
)
_TRACES_VIEW = (
    "CREATE MATERIALIZED VIEW IF NOT EXISTS traces_view TO traces AS SELECT trace_id, "
    "min(start_ns) AS min_start_ns, max(start_ns) AS max_start_ns FROM spans GROUP BY trace_id"
)

# -- Rollups ---------------------------------------------------------------------------------
# The tables of `_rollup` with the same columns as on DuckDB, as `AggregatingMergeTree` of
# simple aggregates: a merge adds (or takes the min, max of) the partial rows of one key, and
# every query sums the rows anyway, so an answer never waits for a merge (no FINAL). A
# materialized view per table rolls up each insert into `spans`; the writer inserts only the
# spans it has not stored (`ClickHouseStore.write`), so a replayed span is never rolled up
# twice. Keys may be NULL (a span without a model or user), hence `allow_nullable_key`.
_ROLLUP_KEYS = {
    "project": "LowCardinality(String)",
    "hour_ns": "Int64",
    "minute_ns": "Int64",
    "is_root": "Bool",
    "bucket": "Int16",
    "user_id": "Nullable(String)",
}
#: Value column -> its simple aggregate and type. Sums past int64 are Int128 (as HUGEINT on
#: DuckDB); a retracting row (`_clickhouse_context.move_queries`) leaves the extremes NULL.
_ROLLUP_VALUES = {
    "n": "sum, Int64",
    "dur_sum": "sum, Int128",
    "dur_min": "min, Nullable(Int64)",
    "dur_max": "max, Nullable(Int64)",
    **{c: "sum, Nullable(Int128)" for c in ru.WIDE_SUMS if c != "dur_sum"},
    "cost_usd": "sum, Nullable(Float64)",
    "missing_price": "sum, Int64",
    "first_ns": "min, Nullable(Int64)",
    "last_ns": "max, Nullable(Int64)",
}
#: Every rollup table, the per-minute one last.
ROLLUPS = (*ru.TABLES, ru.MINUTES)


def _rollup_table(table: ru.Table) -> str:
    keys = ", ".join(
        f"{k} {_ROLLUP_KEYS.get(k, 'LowCardinality(Nullable(String))')}" for k in table.keys
    )
    vals = ", ".join(f"{c} SimpleAggregateFunction({t})" for c, t in _ROLLUP_VALUES.items())
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} ({keys}, {vals}) "
        f"ENGINE = AggregatingMergeTree PARTITION BY {_day(table.time_key)} "
        f"ORDER BY ({', '.join(table.keys)}) "
        "SETTINGS allow_nullable_key = 1, ttl_only_drop_parts = 1"
    )


def _rollup_view(table: ru.Table) -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table.name}_view TO {table.name} AS "
        + ru.select_sql("spans", table=table, d=CLICKHOUSE)
    )


def _rollup_backfill(table: ru.Table) -> tuple[str, ...]:
    """Roll up the spans stored before the view (all again if run again: exact). The
    per-minute table takes the spans of its horizon by the wall clock, as DuckDB's does."""
    recent = f"start_ns >= toUnixTimestamp64Nano(now64(9)) - {ru.MINUTE_KEEP_NS}"
    where = recent if table is ru.MINUTES else ""
    return (
        f"TRUNCATE TABLE {table.name}",
        ru.insert_sql("spans", where, table, d=CLICKHOUSE),
    )


#: The hours each write is about to change in the rollups, by writer, appended before it
#: changes them: a write cut short by a crash (ClickHouse has no transaction over the
#: spans, their views and the moves of trace contexts) is found at the next start, and its
#: hours rolled up again from their spans (`ClickHouseStore._repair`). Merges keep the
#: latest record of each writer only (the last inserted: one writer inserts in order).
JOURNAL_DDL = (
    "CREATE TABLE IF NOT EXISTS rollup_writes (writer String, seq Int64, hours Array(Int64)) "
    "ENGINE = ReplacingMergeTree ORDER BY writer"
)


def rollup_statements() -> tuple[str, ...]:
    """Migration 2: the rollup tables, their views, the write journal, and the rollup of the
    stored spans (the views first: the store migrates before it writes, so no span falls
    between)."""
    ddl = [sql for t in ROLLUPS for sql in (_rollup_table(t), _rollup_view(t))]
    return (*ddl, JOURNAL_DDL, *(sql for t in ROLLUPS for sql in _rollup_backfill(t)))


def rebuild_statements(hours: list[int], recent_ns: int) -> list[str]:
    """Statements that roll these hours up again from their spans, in every rollup (the
    per-minute one: its minutes from `recent_ns` on)."""
    inlist = ", ".join(str(int(h)) for h in sorted(hours))
    hour = f"intDiv({{t}}, {ru.HOUR_NS}) * {ru.HOUR_NS} IN ({inlist})"
    out = []
    for table in ROLLUPS:
        where = hour.format(t="start_ns")
        if table is ru.MINUTES:
            where += f" AND start_ns >= {int(recent_ns)}"
        out.append(f"DELETE FROM {table.name} WHERE {hour.format(t=table.time_key)}")
        out.append(ru.insert_sql("spans", where, table, d=CLICKHOUSE))
    return out


#: (version, what it does, statements): each statement may run again after a crash.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "spans, payloads apart, scores, the traces lookup table and its view, trace contexts",
        (_spans(), _payloads(PAYLOADS_BY_TRACE), _scores(), _TRACES, _TRACES_VIEW,
         _context.DDL),
    ),
    (2, "rollups as materialized views (hourly, per minute, totals, per user)",
     rollup_statements()),
    (3, "payloads ordered by start (a text search reads those of its time window)",
     text_search_statements()),
)  # fmt: skip
LATEST = MIGRATIONS[-1][0]
VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version UInt32, description String, "
    "applied_ns Int64) ENGINE = MergeTree ORDER BY version"
)
#: (table, the nanosecond column its TTL reads, extra days)
TTL_COLUMNS = (
    ("spans", "start_ns", 0),
    ("payloads", "start_ns", 0),
    ("scores", "created_ns", 0),
    ("traces", "max_start_ns", TRACE_MARGIN_DAYS),
    ("trace_context", "start_ns", TRACE_MARGIN_DAYS),
    *((t.name, t.time_key, 0) for t in ru.TABLES),  # the per-minute one: the writer prunes it
)


_NAME = re.compile(r"CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+) ")


def create_statements(ttl_days: int | None = None) -> list[str]:
    """Every CREATE statement of the latest layout (with the TTLs when given): a table a
    later migration rebuilt as that one made it; none of the statements that fill or move
    stored data."""
    ddl: dict[str, str] = {}
    for sql in (sql for _, _, sqls in MIGRATIONS for sql in sqls):
        name = _NAME.match(sql)
        if name is not None:
            table = name.group(1).removesuffix(_REBUILT)
            ddl[table] = sql.replace(f" {name.group(1)} ", f" {table} ", 1)
    return list(ddl.values()) + (ttl_statements(ttl_days) if ttl_days is not None else [])


def ttl_statements(days: int) -> list[str]:
    """Statements that keep `days` days in every table (whole parts dropped as they expire)."""
    return [
        f"ALTER TABLE {table} MODIFY TTL {_SECONDS.format(col=col)} "
        f"+ INTERVAL {int(days) + extra} DAY"
        for table, col, extra in TTL_COLUMNS
    ]


def migrate(
    command: Callable[[str], object],
    applied: Callable[[], int],
    target: int = LATEST,
) -> int:
    """Apply every migration above the recorded version up to `target`; return the new one.

    `command` runs one statement, `applied` reads the highest version recorded.
    """
    command(VERSION_DDL)
    version = applied()
    if version > LATEST:
        raise StoreError(
            f"this ClickHouse database holds span store schema version {version}, made by a "
            f"newer watchkeeper; this one knows versions up to {LATEST}: upgrade watchkeeper "
            "(a schema is never migrated back)"
        )
    for step, description, statements in MIGRATIONS:
        if version < step <= target:
            for sql in statements:
                command(sql)
            desc = description.replace("'", "''")
            command(f"INSERT INTO schema_version VALUES ({step}, '{desc}', {time.time_ns()})")
            version = step
    return version


_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\) ENGINE = (\w+) (.*)", re.DOTALL)
_VIEW = re.compile(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS (.*) FROM (\w+) (.*)")
#: How a table's rows are spread over shards: a trace's rows on one shard, so a trace opens
#: from one shard and its context is filled there.
SHARD_KEY = "cityHash64(trace_id)"


def cluster_statements(cluster: str, ttl_days: int | None = None) -> list[str]:
    """The latest layout for a named cluster: per table a `<name>_local` Replicated table on
    every node and a `Distributed` table `<name>` over them (sharded by trace id), the views
    between local tables (ON CLUSTER throughout); the TTLs when given."""
    if not _CLUSTER_NAME.fullmatch(cluster):
        raise ValueError(f"cluster name {cluster!r}: use letters, digits, _ . and -")
    on = f"ON CLUSTER `{cluster}`"
    out = [VERSION_DDL.replace(" (", f" {on} (", 1)]
    for sql in create_statements():
        table, view = _TABLE.fullmatch(sql), _VIEW.fullmatch(sql)
        if table is not None:
            name, cols, engine, rest = table.groups()
            path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}'"
            out.append(
                f"CREATE TABLE IF NOT EXISTS {name}_local {on} ({cols}) "
                f"ENGINE = Replicated{engine}({path}) {rest}"
            )
            # rows of a rollup (moved between users or features) may go to any shard
            shard = SHARD_KEY if "trace_id String" in cols else "rand()"
            out.append(
                f"CREATE TABLE IF NOT EXISTS {name} {on} AS {name}_local ENGINE = "
                f"Distributed('{cluster}', currentDatabase(), '{name}_local', {shard})"
            )
        elif view is not None:
            name, target, select, source, rest = view.groups()
            out.append(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} {on} TO {target}_local "
                f"AS {select} FROM {source}_local {rest}"
            )
        else:  # every statement of MIGRATIONS is one of the two shapes
            raise AssertionError(f"no cluster form for: {sql[:60]}")
    if ttl_days is not None:
        out += [
            sql.replace(f"ALTER TABLE {t} ", f"ALTER TABLE {t}_local {on} ", 1)
            for sql, (t, _, _) in zip(ttl_statements(ttl_days), TTL_COLUMNS, strict=True)
        ]
    return out
