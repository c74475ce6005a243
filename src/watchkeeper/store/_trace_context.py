"""A trace's user, session and feature, applied to every span of the trace.

Plain OpenTelemetry apps put `user.id`, `session.id` and the feature tag on the root span
only, while the tokens and cost are on its child LLM spans; children often arrive first.
`trace_context` keeps, per (project, trace id), the first non-null value of each field seen
on any span (the root's first within a batch, then the earliest start), and the start of the
earliest span that brought it. A write then:

1. reads, for each trace of its batch, the context already known (one scan of the context
   rows that start within the window around the batch: see below);
2. upserts its batch's context, keeping the values already known;
3. for traces whose context it learned and whose spans were stored by earlier writes, fills
   those spans' NULL fields and moves them in the rollups keyed by user or feature (a
   partial row taking them out of the old key, one adding them to the new key), so sums
   stay exact without reading an hour of spans;
4. stores its own spans with their NULL fields taken from the context.

A span's own value always wins. When a trace's root and children arrive in the same batch
step 4 does it all; step 3 runs only for traces already stored without their context.
Traces with no user, session or feature at all get no row.

**The window.** Trace ids are random, so a lookup by id cannot skip any part of the table
and would cost more with every trace stored. A write therefore looks only at the context
rows (and stored traces) that start within `window_ns` of its batch's spans: rows are
appended in arrival order, so DuckDB's per-row-group min/max of `start_ns` skips the rest
and a write's cost stays flat as the store grows. A span that starts more than the window
away from the span that brought its trace's context keeps its own (NULL) fields.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.model import SpanRow
from watchkeeper.store import _rollup as ru
from watchkeeper.store import _traces

FIELDS = ("user_id", "session_id", "feature")
#: How far (ns) a span may start from the span that brought its trace's context.
WINDOW_NS = 3600 * 10**9
#: No key: a write reads only the rows of its window (an index on random ids cost more
#: than the scan, see `_traces`); a trace has one row per window at most.
DDL = (
    "CREATE TABLE trace_context (project VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
    "start_ns BIGINT NOT NULL, user_id VARCHAR, session_id VARCHAR, feature VARCHAR)"
)
_ANY = " OR ".join(f"{c} IS NOT NULL" for c in FIELDS)
#: Within a batch (or the backfill) the root span's value first, then the earliest span's.
_FIRST = "[CASE WHEN parent_span_id = '' THEN 0 ELSE 1 END, start_ns]"
_ON = "c.project = s.project AND c.trace_id = s.trace_id"


def _new(x: str = "") -> str:
    """A field learned by this write (from `wk_ctx`, aliased `x`): none stored, one new."""
    return " OR ".join(f"({x}was_{c} IS NULL AND {x}{c} IS NOT NULL)" for c in FIELDS)


def context_sql(source: str) -> str:
    """Per (project, trace_id) of `source`: its earliest start and the first value of each
    field (NULL where none of its spans has one)."""
    firsts = ", ".join(
        f"arg_min({c}, {_FIRST}) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in FIELDS
    )
    return (
        f"SELECT project, trace_id, min(start_ns) AS start_ns, {firsts} "
        f"FROM {source} GROUP BY project, trace_id"
    )


def backfill() -> tuple[str, ...]:
    """Statements that build the context of the stored spans and fill the spans from it
    (the rollups keyed by user or feature are rebuilt after)."""
    sets = ", ".join(f"{n} = coalesce(spans.{n}, c.{n})" for n in FIELDS)
    missing = " OR ".join(f"(spans.{n} IS NULL AND c.{n} IS NOT NULL)" for n in FIELDS)
    return (
        DDL,
        f"INSERT INTO trace_context SELECT * FROM ({context_sql('spans')}) WHERE {_ANY} "
        "ORDER BY start_ns",
        f"UPDATE spans SET {sets} FROM trace_context c WHERE c.project = spans.project "
        f"AND c.trace_id = spans.trace_id AND ({missing})",
    )


def rebuild_with_starts() -> tuple[str, ...]:
    """Statements that rebuild `trace_context` with each trace's first start, in start order
    (whether or not the table has a `start_ns` column yet)."""
    return (
        "CREATE TEMP TABLE wk_old_context AS SELECT c.project, c.trace_id, "
        f"coalesce(t.lo, 0) AS start_ns, {', '.join(f'c.{n}' for n in FIELDS)} "
        "FROM trace_context c LEFT JOIN (SELECT trace_id, min(min_start_ns) AS lo "
        "FROM traces GROUP BY trace_id) t ON t.trace_id = c.trace_id",
        "DROP TABLE trace_context",
        DDL,
        "INSERT INTO trace_context SELECT * FROM wk_old_context ORDER BY start_ns",
        "DROP TABLE wk_old_context",
    )


def _read(cur: Any, source: str, bounds: dict[str, int]) -> None:
    """`wk_ctx`: per trace of `source`, the batch's values, the stored ones (`was_*`, the
    earliest row's where two rows of the window hold one), and whether a row exists."""
    was = ", ".join(
        f"arg_min(k.{c}, k.start_ns) FILTER (WHERE k.{c} IS NOT NULL) AS was_{c}" for c in FIELDS
    )
    cur.execute(
        f"CREATE TEMP TABLE wk_ctx AS SELECT b.*, {was}, count(k.trace_id) > 0 AS known "
        f"FROM ({context_sql(source)}) b "
        "LEFT JOIN (SELECT * FROM trace_context WHERE start_ns BETWEEN $lo AND $hi) k "
        "ON k.project = b.project AND k.trace_id = b.trace_id "
        f"GROUP BY b.project, b.trace_id, b.start_ns, {', '.join(f'b.{c}' for c in FIELDS)}",
        bounds,
    )


def _learn(cur: Any, bounds: dict[str, int]) -> None:
    """Store what `wk_ctx` learned (fill the known rows' NULL fields, add rows for the other
    traces); keep in `wk_learned` the fields learned now (NULL the others) of traces
    already stored, with their start range."""
    sets = ", ".join(f"{c} = coalesce(trace_context.{c}, x.{c})" for c in FIELDS)
    cur.execute(
        f"UPDATE trace_context SET {sets}, start_ns = least(trace_context.start_ns, x.start_ns) "
        "FROM wk_ctx x WHERE trace_context.start_ns BETWEEN $lo AND $hi "
        "AND trace_context.project = x.project AND trace_context.trace_id = x.trace_id "
        f"AND x.known AND ({_new('x.')})",
        bounds,
    )
    cur.execute(
        f"INSERT INTO trace_context SELECT project, trace_id, start_ns, {', '.join(FIELDS)} "
        f"FROM wk_ctx WHERE NOT known AND ({_ANY})"
    )
    learned = ", ".join(f"CASE WHEN x.was_{c} IS NULL THEN x.{c} END AS {c}" for c in FIELDS)
    ranges = _traces.ranges_sql("$lo", "$hi", f"SELECT trace_id FROM wk_ctx WHERE {_new()}")
    cur.execute(
        f"CREATE TEMP TABLE wk_learned AS SELECT x.project, x.trace_id, {learned}, t.lo, t.hi "
        f"FROM wk_ctx x JOIN ({ranges}) t ON t.trace_id = x.trace_id WHERE {_new('x.')}",
        bounds,
    )


def _fix_stored(cur: Any) -> set[int]:
    """Fill the stored spans of `wk_learned` and move them in the rollups; their hours."""
    ((lo, hi),) = cur.execute("SELECT min(lo), max(hi) FROM wk_learned").fetchall()
    if lo is None:
        return set()
    news = ", ".join(f"coalesce(s.{c}, l.{c}) AS new_{c}" for c in FIELDS)
    missing = " OR ".join(f"(s.{c} IS NULL AND l.{c} IS NOT NULL)" for c in FIELDS)
    cur.execute(
        f"CREATE TEMP TABLE wk_fix AS SELECT s.*, {news} FROM spans s JOIN wk_learned l "
        "ON s.project = l.project AND s.trace_id = l.trace_id "
        f"WHERE s.start_ns BETWEEN $lo AND $hi AND s.start_ns BETWEEN l.lo AND l.hi "
        f"AND ({missing})",
        {"lo": lo, "hi": hi},
    )
    for table, col in ((ru.USERS, "user_id"), (ru.TOTALS, "feature")):
        moved = f"{col} IS DISTINCT FROM new_{col}"
        cur.execute(ru.insert_sql("wk_fix", moved, table, retract=True))
        to = f"(SELECT * REPLACE (new_{col} AS {col}) FROM wk_fix WHERE {moved})"
        cur.execute(ru.insert_sql(to, table=table))
    sets = ", ".join(f"{c} = f.new_{c}" for c in FIELDS)
    cur.execute(
        f"UPDATE spans SET {sets} FROM wk_fix f WHERE spans.start_ns BETWEEN $lo AND $hi "
        "AND spans.start_ns = f.start_ns AND spans.span_id = f.span_id "
        "AND spans.trace_id = f.trace_id AND spans.project = f.project",
        {"lo": lo, "hi": hi},
    )
    hours = cur.execute(
        f"SELECT DISTINCT start_ns // {ru.HOUR_NS} * {ru.HOUR_NS} FROM wk_fix"
    ).fetchall()
    cur.execute("DROP TABLE wk_fix")
    return {int(h) for (h,) in hours}


#: The spans' columns in table order, each NULL field taken from the trace's context: the
#: value stored before this write, else the batch's first.
_FILLED = ", ".join(
    f"coalesce(s.{n}, c.was_{n}, c.{n}) AS {n}" if n in FIELDS else f"s.{n}"
    for n in SpanRow.__dataclass_fields__
)
_FILLS = " OR ".join(f"(s.{n} IS NULL AND coalesce(c.was_{n}, c.{n}) IS NOT NULL)" for n in FIELDS)
_INT64_MAX = 2**63 - 1


def apply(
    cur: Any, source: str, target: str, starts: tuple[int, int], window_ns: int = WINDOW_NS
) -> tuple[set[int], bool]:
    """Learn the context of the new spans in `source` (whose spans start within `starts`)
    and fix the spans stored before; when the context fills any of the new spans, create
    the temp table `target` of them filled. Return the hours whose rollup rows were
    corrected, and whether `target` was created."""
    bounds = {"lo": max(starts[0] - window_ns, 0), "hi": min(starts[1] + window_ns, _INT64_MAX)}
    _read(cur, source, bounds)
    _learn(cur, bounds)
    hours = _fix_stored(cur)
    cur.execute("DROP TABLE wk_learned")
    ((n,),) = cur.execute(
        f"SELECT count(*) FROM {source} s JOIN wk_ctx c ON {_ON} WHERE {_FILLS}"
    ).fetchall()
    if n:  # else the spans go in as they came, without a copy
        cur.execute(
            f"CREATE TEMP TABLE {target} AS SELECT {_FILLED} FROM {source} s "
            f"LEFT JOIN wk_ctx c ON {_ON}"
        )
    cur.execute("DROP TABLE wk_ctx")
    return hours, bool(n)
