"""The DuckDB schema of the span store: ordered migrations recorded in `schema_version`.

Each step runs once, in order, in its own transaction; a file written by an older version
is upgraded when it is opened. Never edit a released step: append a new one.
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

from watchkeeper.model import ScoreRow, SpanRow
from watchkeeper.store import _rollup, _trace_context, _traces

_INT = {"start_ns", "duration_ns", "created_ns"} | {
    f"{t}_tokens" for t in ("input", "output", "cache_read", "cache_write", "reasoning")
}
_FLOAT = {"cost_usd", "value"}
_SMALLINT = {"http_status_code"}
_REQUIRED = {
    "project",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "start_ns",
    "duration_ns",
    "service",
    "environment",
    "span_kind",
    "operation",
    "status_code",
    "outcome",
    "cost_source",
}
_SCORE_REQUIRED = {"project", "score_id", "trace_id", "name", "created_ns", "source"}


def sql_type(column: str) -> str:
    """The DuckDB type of a `SpanRow`/`ScoreRow` column (times are BIGINT nanoseconds)."""
    if column in _INT:
        return "BIGINT"
    if column in _FLOAT:
        return "DOUBLE"
    if column in _SMALLINT:
        return "INTEGER"
    return "VARCHAR"


def _columns(row_type: Any, required: set[str]) -> str:
    cols = []
    for f in fields(row_type):
        null = " NOT NULL" if f.name in required else ""
        cols.append(f"{f.name} {sql_type(f.name)}{null}")
    return ", ".join(cols)


def payloads_ddl(io: str, meta: str | None) -> str:
    """The `payloads` table, its `io` and `meta` columns compressed by those names of
    DuckDB's compressions (None: DuckDB's choice).

    Version 12's layout stored `io` uncompressed: it held zstd frames only, which DuckDB's
    own compression could not shrink (its checkpoints analysed every segment for nothing).
    Version 13's compresses both by zstd: a short text is now kept as it is
    (`_payload.RAW_MAX`), and zstd over a column's values together finds what they share
    (the same system prompt, the same resource). bench.ingest's 1M spans, copied into each
    layout and checkpointed once: `io` 152.5 -> 102.7 bytes a span (insert and checkpoint
    1.72 -> 2.32 s), `meta` 24.9 (dictionary + FSST) -> 11.3 (4.9 -> 2.5 s)."""
    compressed = {"io": io, "meta": meta}
    return (
        "CREATE TABLE payloads (project VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
        "span_id VARCHAR NOT NULL, start_ns BIGINT NOT NULL, "
        + ", ".join(
            f"{c} BLOB" + (f" USING COMPRESSION {how}" if how else "")
            for c, how in compressed.items()
        )
        + ")"
    )


def _copy_payloads(older: int, ddl: str) -> tuple[str, ...]:
    """`payloads` copied into the layout of `ddl`, in its order, from version `older`'s
    (DuckDB has no ALTER for a column's compression). One transaction: the copy is written
    to the file as it goes (DuckDB writes a large insert's row groups before its commit),
    so it needs the memory limit, not the table's size; a crash part-way leaves the old
    table."""
    return (
        f"ALTER TABLE payloads RENAME TO wk_payloads_v{older}",
        ddl,
        f"INSERT INTO payloads SELECT * FROM wk_payloads_v{older}",
        f"DROP TABLE wk_payloads_v{older}",
    )


#: Ordered schema steps: (version, what it does, statements).
Migrations = tuple[tuple[int, str, tuple[str, ...]], ...]
#: The span store's. Version 1 is the first released layout.
MIGRATIONS: Migrations = (
    (
        1,
        "spans, compressed payloads, scores",
        (
            f"CREATE TABLE spans ({_columns(SpanRow, _REQUIRED)})",
            "CREATE TABLE payloads (project VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
            "span_id VARCHAR NOT NULL, start_ns BIGINT NOT NULL, io BLOB, meta BLOB)",
            f"CREATE TABLE scores ({_columns(ScoreRow, _SCORE_REQUIRED)}, PRIMARY KEY (score_id))",
        ),
    ),
    (
        2,
        "traces side table (trace id -> first/last span start) for trace lookups",
        (
            # One key column: DuckDB answers `trace_id = ?` from this ART index (0.4 ms at
            # 2.5M traces) but scans for a two-column key. The range spans every project
            # that shares the trace; queries still filter spans by project.
            "CREATE TABLE traces (trace_id VARCHAR PRIMARY KEY, "
            "min_start_ns BIGINT NOT NULL, max_start_ns BIGINT NOT NULL)",
            "INSERT INTO traces SELECT trace_id, min(start_ns), max(start_ns) "
            "FROM spans GROUP BY trace_id",
        ),
    ),
    (
        3,
        "hourly rollup (counts, sums, latency histogram) backfilled from the spans",
        (_rollup.MAIN.ddl(), _rollup.insert_sql("spans")),
    ),
    (
        4,
        "hourly sums per user (user_rollup) backfilled from the spans",
        (_rollup.USERS.ddl(), _rollup.insert_sql("spans", table=_rollup.USERS)),
    ),
    (
        5,
        "hourly sums without latency buckets (totals_rollup) backfilled from the spans",
        (_rollup.TOTALS.ddl(), _rollup.insert_sql("spans", table=_rollup.TOTALS)),
    ),
    (
        6,
        "rollup sums of durations and tokens widened to HUGEINT (no int64 overflow)",
        tuple(
            f"ALTER TABLE {table.name} ALTER {column} TYPE HUGEINT"
            for table in _rollup.TABLES
            for column in _rollup.WIDE_SUMS
        ),
    ),
    (
        7,
        "rollups rebuilt from the spans: last_ns is the latest span end, not the latest start",
        tuple(
            sql
            for table in _rollup.TABLES
            for sql in (f"DELETE FROM {table.name}", _rollup.insert_sql("spans", table=table))
        ),
    ),
    (
        8,
        "trace_context (a trace's first user, session, feature) backfilled; spans filled from "
        "it; the rollups by user and by feature rebuilt",
        (
            *_trace_context.backfill(),
            *(
                sql
                for table in (_rollup.USERS, _rollup.TOTALS)
                for sql in (f"DELETE FROM {table.name}", _rollup.insert_sql("spans", table=table))
            ),
        ),
    ),
    (
        9,
        "trace_context keeps each trace's first start; it and traces lose their indexes "
        "(a write reads only the rows near its spans; a trace is found by a numeric key); "
        "both rebuilt in start order",
        (*_trace_context.rebuild_with_starts(), *_traces.rebuild_v9()),
    ),
    (
        10,
        "per-minute rollup (minute_rollup) backfilled from the spans of its horizon",
        (
            _rollup.MINUTES.ddl(),
            _rollup.insert_sql(
                "spans", f"start_ns >= epoch_ns(now()) - {_rollup.MINUTE_KEEP_NS}", _rollup.MINUTES
            ),
        ),
    ),
    (
        11,
        "each trace's context moves into traces (a row per project, trace and write, with "
        "the user, session and feature the write applied): a write finds its traces' rows "
        "by their numeric key (the id's last 64 bits, its random part); trace_context dropped",
        _traces.rebuild_with_context(),
    ),
    (
        12,
        "payloads' text (zstd already) stored without DuckDB's compression: the table copied",
        _copy_payloads(11, payloads_ddl("uncompressed", None)),
    ),
    (
        13,
        "payloads' text and documents compressed by zstd over the column (short texts are "
        "no longer frames of their own): the table copied",
        _copy_payloads(12, payloads_ddl("zstd", "zstd")),
    ),
)
LATEST = MIGRATIONS[-1][0]


def current_version(con: Any) -> int:
    """The schema version of an open database (0 when empty)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, description VARCHAR, applied_ns BIGINT)"
    )
    (row,) = con.execute("SELECT max(version) FROM schema_version").fetchall()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: Any, target: int | None = None, steps: Migrations = MIGRATIONS) -> int:
    """Apply every step of `steps` (the span store's by default) above the file's version,
    up to `target` (all by default); return the new version."""
    version = current_version(con)
    for step, description, statements in steps:
        if version < step and (target is None or step <= target):
            con.execute("BEGIN TRANSACTION")
            try:
                for sql in statements:
                    con.execute(sql)
                con.execute(
                    "INSERT INTO schema_version VALUES ($v, $d, $t)",
                    {"v": step, "d": description, "t": time.time_ns()},
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            version = step
    return version
