"""The `traces` side table: where each trace's spans start, and the trace's context.

A row per (project, trace) and write: the trace id's last 64 bits as a number (`trace_key`),
the id, the project, the first and last start of the trace's spans in that write, and the
user, session and feature the write applied to them (`_trace_context`); a trace's range is
the min and max over its rows (most traces have one). There is no index: DuckDB's ART on the
id took ~145 bytes a trace on disk and in memory (580 MiB for 4M traces, against 70 MiB for
the column alone), made every insert 4× slower, and its upkeep grew with the table. A lookup
scans the numeric key instead (≈ 50 ms at 4M traces on a loaded 2-core machine), then
compares the id; rows are appended in arrival order, so scans bounded by time skip the rest
by the row groups' min/max.
"""

from __future__ import annotations

import re

from watchkeeper.store._render import Query

DDL = (
    "CREATE TABLE traces (trace_key UBIGINT, trace_id VARCHAR NOT NULL, "
    "project VARCHAR NOT NULL, min_start_ns BIGINT NOT NULL, max_start_ns BIGINT NOT NULL, "
    "user_id VARCHAR, session_id VARCHAR, feature VARCHAR)"
)
#: The key of the `trace_id` column in SQL: stored ids are 32 lowercase hex characters (an
#: id of another form, which ingest does not make, gets NULL and is still found). The last
#: 64 bits, not the first: they are the random part of an id (W3C trace context asks for
#: the rightmost 7 bytes random; AWS X-Ray ids start with a timestamp; 64-bit ids of older
#: tracers arrive with zeros on the left), and a key shared by many traces makes a write's
#: lookup fetch all of their rows.
HEX32 = "[0-9a-f]{32}"
KEY_SQL = (
    f"CASE WHEN regexp_full_match(trace_id, '{HEX32}') "
    "THEN ('0x' || right(trace_id, 16))::UBIGINT END"
)
_HEX32 = re.compile(HEX32)
#: The fields of a trace's context (`_trace_context`), kept on each of its rows.
CONTEXT = ("user_id", "session_id", "feature")
#: Within a batch (or a bulk load) the root span's value first, then the earliest span's.
_FIRST = "[CASE WHEN parent_span_id = '' THEN 0 ELSE 1 END, start_ns]"
#: The first value of each context field, as aggregates over a trace's spans.
FIRSTS = ", ".join(f"arg_min({c}, {_FIRST}) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in CONTEXT)


def key(trace_id: str) -> int | None:
    """The key of `trace_id` (None for an id not of 32 lowercase hex characters)."""
    return int(trace_id[16:], 16) if _HEX32.fullmatch(trace_id) else None


def rows_sql(source: str) -> str:
    """Per (project, trace) of the spans in `source`, its row in table order: key, id,
    project, the range of its starts and the first value of each context field (NULL where
    none of its spans has one)."""
    return (
        f"SELECT {KEY_SQL} AS trace_key, trace_id, project, min(start_ns) AS min_start_ns, "
        f"max(start_ns) AS max_start_ns, {FIRSTS} FROM {source} GROUP BY project, trace_id"
    )


def insert_sql(source: str) -> str:
    """Append the rows of the spans in `source` (a bulk load: spans already filled)."""
    return f"INSERT INTO traces {rows_sql(source)}"


def range_query(trace_id: str) -> Query:
    """The first and last span start of one trace, over every project (NULLs: no such id)."""
    k = key(trace_id)
    by_key = "trace_key IS NULL" if k is None else f"trace_key = {k}"
    return Query(
        f"SELECT min(min_start_ns), max(max_start_ns) FROM traces WHERE {by_key} AND trace_id = $t",
        {"t": trace_id},
    )


#: `traces` as version 9 made it (one row per trace and write, over every project).
V9_DDL = (
    "CREATE TABLE traces (trace_key UBIGINT, trace_id VARCHAR NOT NULL, "
    "min_start_ns BIGINT NOT NULL, max_start_ns BIGINT NOT NULL)"
)


def rebuild_v9() -> tuple[str, ...]:
    """Statements that rebuild `traces` in its version-9 shape from any earlier one."""
    return (
        "CREATE TEMP TABLE wk_old_traces AS SELECT trace_id, min_start_ns, max_start_ns "
        "FROM traces",
        "DROP TABLE traces",
        V9_DDL,
        f"INSERT INTO traces SELECT {KEY_SQL}, trace_id, min_start_ns, max_start_ns "
        "FROM wk_old_traces ORDER BY min_start_ns",
        "DROP TABLE wk_old_traces",
    )


def rebuild_with_context() -> tuple[str, ...]:
    """Statements that rebuild `traces` in this shape from version 9's `traces` and
    `trace_context`: a row per (project, trace) of the stored spans, with the trace's
    context (its earliest), in start order; `trace_context` is dropped."""
    first = ", ".join(
        f"arg_min({c}, start_ns) FILTER (WHERE {c} IS NOT NULL) AS {c}"
        for c in ("user_id", "session_id", "feature")
    )
    return (
        "CREATE TEMP TABLE wk_old_ranges AS SELECT project, trace_id, min(start_ns) AS lo, "
        "max(start_ns) AS hi FROM spans GROUP BY project, trace_id",
        f"CREATE TEMP TABLE wk_old_context AS SELECT project, trace_id, {first} "
        "FROM trace_context GROUP BY project, trace_id",
        "DROP TABLE traces",
        "DROP TABLE trace_context",
        DDL,
        f"INSERT INTO traces SELECT {KEY_SQL}, trace_id, project, lo, hi, user_id, session_id, "
        "feature FROM wk_old_ranges LEFT JOIN wk_old_context USING (project, trace_id) "
        "ORDER BY lo",
        "DROP TABLE wk_old_ranges",
        "DROP TABLE wk_old_context",
    )
