"""The `traces` side table: where each trace's spans start, to find them by trace id.

A row per trace and write: (the trace id's first 64 bits as a number, the id, the first and
last start of the trace's spans in that write); a trace's range is the min and max over its
rows (most traces have one). There is no index: DuckDB's ART on the id took ~145 bytes a
trace on disk and in memory (580 MiB for 4M traces, against 70 MiB for the column alone),
made every insert 4× slower, and its upkeep grew with the table. A lookup scans the
numeric key instead (≈ 50 ms at 4M traces on a loaded 2-core machine), then compares the id;
rows are appended in arrival order, so scans bounded by time skip the rest by the
row groups' min/max.
"""

from __future__ import annotations

import re

from watchkeeper.store._render import Query

DDL = (
    "CREATE TABLE traces (trace_key UBIGINT, trace_id VARCHAR NOT NULL, "
    "min_start_ns BIGINT NOT NULL, max_start_ns BIGINT NOT NULL)"
)
#: The key of the `trace_id` column in SQL: stored ids are 32 lowercase hex characters (an
#: id of another form, which ingest does not make, gets NULL and is still found).
_KEY_SQL = (
    "CASE WHEN regexp_full_match(trace_id, '[0-9a-f]{32}') "
    "THEN ('0x' || left(trace_id, 16))::UBIGINT END"
)
_HEX32 = re.compile(r"[0-9a-f]{32}")


def key(trace_id: str) -> int | None:
    """The key of `trace_id` (None for an id not of 32 lowercase hex characters)."""
    return int(trace_id[:16], 16) if _HEX32.fullmatch(trace_id) else None


def insert_sql(source: str) -> str:
    """Append the range of each trace of the spans in `source`."""
    return (
        f"INSERT INTO traces SELECT {_KEY_SQL}, trace_id, min(start_ns), max(start_ns) "
        f"FROM {source} GROUP BY trace_id"
    )


def range_query(trace_id: str) -> Query:
    """The first and last span start of one trace, over every project (NULLs: no such id)."""
    k = key(trace_id)
    by_key = "trace_key IS NULL" if k is None else f"trace_key = {k}"
    return Query(
        f"SELECT min(min_start_ns), max(max_start_ns) FROM traces WHERE {by_key} AND trace_id = $t",
        {"t": trace_id},
    )


def ranges_sql(lo: str, hi: str, among: str) -> str:
    """The range of each trace of the SQL query `among` (trace ids) with spans starting
    between the SQL expressions `lo` and `hi`.

    The ids are filtered before the GROUP BY: grouping every trace of the window first
    (an hour around a write: 18M rows at 5k traces/s) took most of a busy writer's time.
    """
    return (
        "SELECT trace_id, min(min_start_ns) AS lo, max(max_start_ns) AS hi FROM traces "
        f"WHERE max_start_ns >= {lo} AND min_start_ns <= {hi} AND trace_id IN ({among}) "
        "GROUP BY trace_id"
    )


def rebuild() -> tuple[str, ...]:
    """Statements that rebuild `traces` in this shape from any earlier one, in start order."""
    return (
        "CREATE TEMP TABLE wk_old_traces AS SELECT trace_id, min_start_ns, max_start_ns "
        "FROM traces",
        "DROP TABLE traces",
        DDL,
        f"INSERT INTO traces SELECT {_KEY_SQL}, trace_id, min_start_ns, max_start_ns "
        "FROM wk_old_traces ORDER BY min_start_ns",
        "DROP TABLE wk_old_traces",
    )
