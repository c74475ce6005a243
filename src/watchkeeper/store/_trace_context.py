"""A trace's user, session and feature, applied to every span of the trace.

Plain OpenTelemetry apps put `user.id`, `session.id` and the feature tag on the root span
only, while the tokens and cost are on its child LLM spans; children often arrive first.
`trace_context` keeps, per (project, trace id), the first non-null value of each field seen
on any span (the root's first within a batch, then the earliest start). A write then:

1. upserts its batch's context, keeping the values already known;
2. for traces whose context it learned and whose spans were stored by earlier writes, fills
   those spans' NULL fields and moves them in the rollups keyed by user or feature (a
   partial row taking them out of the old key, one adding them to the new key), so sums
   stay exact without reading an hour of spans;
3. stores its own spans with their NULL fields taken from the context.

A span's own value always wins. When a trace's root and children arrive in the same batch
step 3 does it all; step 2 runs only for traces already stored without their context.
Traces with no user, session or feature at all get no row.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.model import SpanRow
from watchkeeper.store import _rollup as ru

FIELDS = ("user_id", "session_id", "feature")
DDL = (
    "CREATE TABLE trace_context (project VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
    "user_id VARCHAR, session_id VARCHAR, feature VARCHAR, PRIMARY KEY (project, trace_id))"
)
_ANY = " OR ".join(f"{c} IS NOT NULL" for c in FIELDS)
#: Within a batch (or the backfill) the root span's value first, then the earliest span's.
_FIRST = "[CASE WHEN parent_span_id = '' THEN 0 ELSE 1 END, start_ns]"
#: The spans' columns in table order, each NULL field taken from the trace's context `c`.
_FILLED = ", ".join(
    f"coalesce(s.{n}, c.{n}) AS {n}" if n in FIELDS else f"s.{n}"
    for n in SpanRow.__dataclass_fields__
)
_ON = "c.project = s.project AND c.trace_id = s.trace_id"


def context_sql(source: str) -> str:
    """Per (project, trace_id) of `source` with any context: the first value of each field."""
    firsts = ", ".join(
        f"arg_min({c}, {_FIRST}) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in FIELDS
    )
    return (
        f"SELECT project, trace_id, {firsts} FROM {source} WHERE {_ANY} GROUP BY project, trace_id"
    )


def filled_sql(source: str) -> str:
    """The spans of `source` with their NULL fields filled from `trace_context`."""
    return f"SELECT {_FILLED} FROM {source} s LEFT JOIN trace_context c ON {_ON}"


def backfill() -> tuple[str, ...]:
    """Statements that build the context of the stored spans and fill the spans from it
    (the rollups keyed by user or feature are rebuilt after)."""
    sets = ", ".join(f"{n} = coalesce(spans.{n}, c.{n})" for n in FIELDS)
    missing = " OR ".join(f"(spans.{n} IS NULL AND c.{n} IS NOT NULL)" for n in FIELDS)
    return (
        DDL,
        f"INSERT INTO trace_context {context_sql('spans')}",
        f"UPDATE spans SET {sets} FROM trace_context c WHERE c.project = spans.project "
        f"AND c.trace_id = spans.trace_id AND ({missing})",
    )


def _learn(cur: Any, source: str) -> None:
    """Upsert the context of the spans in `source`; keep in `wk_learned` the fields learned
    now (NULL the others) of traces already stored, with their start range."""
    was = ", ".join(f"k.{c} AS was_{c}" for c in FIELDS)
    cur.execute(
        f"CREATE TEMP TABLE wk_ctx AS SELECT b.*, {was}, k.trace_id IS NOT NULL AS known "
        f"FROM ({context_sql(source)}) b "
        "LEFT JOIN trace_context k ON k.project = b.project AND k.trace_id = b.trace_id"
    )
    new = " OR ".join(f"(was_{c} IS NULL AND {c} IS NOT NULL)" for c in FIELDS)
    keep = ", ".join(f"{c} = coalesce(trace_context.{c}, excluded.{c})" for c in FIELDS)
    cur.execute(
        f"INSERT INTO trace_context SELECT project, trace_id, {', '.join(FIELDS)} "
        f"FROM wk_ctx WHERE {new} ON CONFLICT DO UPDATE SET {keep}"
    )
    learned = ", ".join(f"CASE WHEN x.was_{c} IS NULL THEN x.{c} END AS {c}" for c in FIELDS)
    cur.execute(
        f"CREATE TEMP TABLE wk_learned AS SELECT x.project, x.trace_id, {learned}, "
        "t.min_start_ns AS lo, t.max_start_ns AS hi FROM wk_ctx x "
        f"JOIN traces t ON t.trace_id = x.trace_id WHERE {new}"
    )
    cur.execute("DROP TABLE wk_ctx")


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


def apply(cur: Any, source: str, target: str) -> tuple[set[int], bool]:
    """Learn the context of the new spans in `source` and fix the spans stored before; when
    the context fills any of the new spans, create the temp table `target` of them filled.
    Return the hours whose rollup rows were corrected, and whether `target` was created."""
    _learn(cur, source)
    hours = _fix_stored(cur)
    cur.execute("DROP TABLE wk_learned")
    fills = " OR ".join(f"(s.{n} IS NULL AND c.{n} IS NOT NULL)" for n in FIELDS)
    ((n,),) = cur.execute(
        f"SELECT count(*) FROM {source} s JOIN trace_context c ON {_ON} WHERE {fills}"
    ).fetchall()
    if n:  # else the spans go in as they came, without a copy
        cur.execute(f"CREATE TEMP TABLE {target} AS {filled_sql(source)}")
    return hours, bool(n)
