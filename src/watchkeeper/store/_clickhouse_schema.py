"""The ClickHouse layout of the span store's logical schema (the same columns as DuckDB).

- `spans`: narrow analytic columns, `ReplacingMergeTree` partitioned by UTC day, ordered by
  (project, hour, service, start, trace, span): every dashboard query reads one project's
  time range, a service filter narrows it further, and the key ends in the span's identity,
  so a span stored twice (a replay racing the writer's key check, two replicas) collapses
  on merge. Bloom filters on trace, user and session ids serve the exact-match filters.
- `payloads`: the compressed text and documents, apart, ordered by (project, trace, span):
  read only when a trace is opened or text searched.
- `traces`: the trace-id access path (first and last span start per trace id), an
  `AggregatingMergeTree` ordered by id and filled by a materialized view on `spans`, so a
  trace lookup reads a few granules, then one time range of `spans`.
- `trace_context`: each trace's user, session and feature (`_clickhouse_context`).
- `scores`; `schema_version` records the migrations applied (`migrate`).

Retention is a TTL on each table (`ttl_only_drop_parts`: whole days are dropped, never
rewritten); `ttl_statements` sets it for the configured number of days.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import fields

from watchkeeper.model import ScoreRow, SpanRow
from watchkeeper.store import _clickhouse_context as _context
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
#: ZSTD(3) only where it measured smaller than ZSTD(1). The payload blobs come compressed
#: per span (zstd, `_payload`); on distinct documents a second pass still took 3% off the
#: text (ZSTD(1); ZSTD(3) 5%, at twice the CPU on a wide column) and 54% off the small
#: attribute documents (ZSTD(3): their frames and keys repeat from span to span).
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


def _payloads() -> str:
    return (
        "CREATE TABLE IF NOT EXISTS payloads (project LowCardinality(String), "
        "trace_id String CODEC(ZSTD(1)), span_id String CODEC(ZSTD(1)), "
        "start_ns Int64 CODEC(T64, ZSTD(1)), io Nullable(String) CODEC(ZSTD(1)), "
        "meta Nullable(String) CODEC(ZSTD(3)), "
        "INDEX start_minmax start_ns TYPE minmax GRANULARITY 1) "
        f"ENGINE = ReplacingMergeTree PARTITION BY {_day('start_ns')} "
        "ORDER BY (project, trace_id, span_id) SETTINGS ttl_only_drop_parts = 1"
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
#: (version, what it does, statements): each statement may run again after a crash.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "spans, payloads apart, scores, the traces lookup table and its view, trace contexts",
        (_spans(), _payloads(), _scores(), _TRACES, _TRACES_VIEW, _context.DDL),
    ),
)
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
)


def create_statements(ttl_days: int | None = None) -> list[str]:
    """Every CREATE statement of the latest layout (with the TTLs when given)."""
    ddl = [sql for _, _, statements in MIGRATIONS for sql in statements]
    return ddl + (ttl_statements(ttl_days) if ttl_days is not None else [])


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
    for _, _, statements in MIGRATIONS:
        for sql in statements:
            table, view = _TABLE.fullmatch(sql), _VIEW.fullmatch(sql)
            if table is not None:
                name, cols, engine, rest = table.groups()
                path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}'"
                out.append(
                    f"CREATE TABLE IF NOT EXISTS {name}_local {on} ({cols}) "
                    f"ENGINE = Replicated{engine}({path}) {rest}"
                )
                out.append(
                    f"CREATE TABLE IF NOT EXISTS {name} {on} AS {name}_local ENGINE = "
                    f"Distributed('{cluster}', currentDatabase(), '{name}_local', {SHARD_KEY})"
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
