"""A trace's user, session and feature, applied to every span of the trace.

Plain OpenTelemetry apps put `user.id`, `session.id` and the feature tag on the root span
only, while the tokens and cost are on its child LLM spans; children often arrive first.
Each write appends to `traces` a row per (project, trace) of its batch (`_traces`): the
start range of those spans and the trace's context as the write applied it, the first
non-null value of each field: the one stored before (the earliest row's), else the batch's
(its root's first, then its earliest span's). A write:

1. finds the rows stored before for the traces of its batch, near its spans (see below),
   and reads from them each trace's stored context and whether, and where, it has spans;
2. for traces whose context it learned and which have stored spans, fills those spans'
   NULL fields and moves them in the rollups keyed by user or feature (a partial row
   taking them out of the old key, one adding them to the new key), so sums stay exact
   without reading an hour of spans;
3. stores its own spans with their NULL fields taken from the context, and its rows.

A span's own value always wins. When a trace's root and children arrive in the same batch
step 3 does it all; step 2 runs only for traces already stored without their context.

**Near.** Trace ids are random, so a lookup by id cannot skip any part of the table and
would cost more with every trace stored. A write therefore looks only at the rows whose
start range meets the window (`window_ns`) around its batch's spans: rows are appended in
arrival order, so DuckDB's per-row-group min/max of the starts skips the rest. Within the
window it first reads only the numeric key and the range of each row, to find its traces'
rows, then fetches those rows by row id. The window fills for the first hour of a busy run
(18M rows at 5k traces/s): joining the ids of all its rows to the batch's, as this step did
before, read every row's 32-character id and took the writer's time as the window filled;
the key alone is 4–8× cheaper to scan. A span that starts more than the window away from
every stored row of its trace keeps its own (NULL) fields.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.model import SpanRow
from watchkeeper.store import _rollup as ru
from watchkeeper.store import _traces

FIELDS = _traces.CONTEXT
#: How far (ns) a span may start from the stored spans of its trace it takes context from.
WINDOW_NS = 3600 * 10**9
_ANY = " OR ".join(f"{c} IS NOT NULL" for c in FIELDS)
_ON = "c.project = s.project AND c.trace_id = s.trace_id"


def _new(x: str = "") -> str:
    """A field learned by this write (from `wk_ctx`, aliased `x`): none stored, one new."""
    return " OR ".join(f"({x}was_{c} IS NULL AND {x}{c} IS NOT NULL)" for c in FIELDS)


def _near(cur: Any, bounds: dict[str, int]) -> None:
    """`wk_near`: the stored rows of the traces of `wk_batch_ctx` whose range meets the
    bounds: found by key (reading nothing else), then fetched by row id."""
    ((unkeyed,),) = cur.execute(
        "SELECT count(*) FROM wk_batch_ctx WHERE trace_key IS NULL"
    ).fetchall()
    ours = "trace_key IN (SELECT trace_key FROM wk_batch_ctx)"
    if unkeyed:  # ids that ingest does not make: rare, and compared whole
        ours = (
            f"({ours} OR (trace_key IS NULL AND trace_id IN "
            "(SELECT trace_id FROM wk_batch_ctx WHERE trace_key IS NULL)))"
        )
    cur.execute(
        "CREATE TEMP TABLE wk_near_rows AS SELECT rowid AS r FROM traces "
        f"WHERE max_start_ns >= $lo AND min_start_ns <= $hi AND {ours}",
        bounds,
    )
    cur.execute(
        "CREATE TEMP TABLE wk_near AS SELECT * FROM traces "
        "WHERE rowid IN (SELECT r FROM wk_near_rows)"
    )
    cur.execute("DROP TABLE wk_near_rows")


def _read(cur: Any, source: str, bounds: dict[str, int]) -> None:
    """`wk_ctx`: per trace of `source`, the batch's values, the stored ones (`was_*`, the
    earliest row's), and the range of its stored spans (`was_lo`, `was_hi`; NULL: none)."""
    cur.execute(f"CREATE TEMP TABLE wk_batch_ctx AS {_traces.rows_sql(source)}")
    _near(cur, bounds)
    was = ", ".join(
        f"arg_min(k.{c}, k.min_start_ns) FILTER (WHERE k.{c} IS NOT NULL) AS was_{c}"
        for c in FIELDS
    )
    cur.execute(
        f"CREATE TEMP TABLE wk_ctx AS SELECT b.*, {was}, min(k.min_start_ns) AS was_lo, "
        "max(k.max_start_ns) AS was_hi FROM wk_batch_ctx b LEFT JOIN wk_near k "
        "ON k.project = b.project AND k.trace_id = b.trace_id "
        "GROUP BY b.trace_key, b.project, b.trace_id, b.min_start_ns, b.max_start_ns, "
        f"{', '.join(f'b.{c}' for c in FIELDS)}"
    )
    cur.execute("DROP TABLE wk_near")
    cur.execute("DROP TABLE wk_batch_ctx")


def _fix_stored(cur: Any) -> set[int]:
    """Fill the stored spans of the traces whose context this write learned, and move them
    in the rollups; return their hours."""
    learned = ", ".join(f"CASE WHEN was_{c} IS NULL THEN {c} END AS {c}" for c in FIELDS)
    cur.execute(
        f"CREATE TEMP TABLE wk_learned AS SELECT project, trace_id, {learned}, "
        f"was_lo AS lo, was_hi AS hi FROM wk_ctx WHERE was_lo IS NOT NULL AND ({_new()})"
    )
    ((lo, hi),) = cur.execute("SELECT min(lo), max(hi) FROM wk_learned").fetchall()
    if lo is None:
        cur.execute("DROP TABLE wk_learned")
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
    cur.execute("DROP TABLE wk_learned")
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
    """Learn the context of the new spans in `source` (whose spans start within `starts`),
    fix the spans stored before and append the write's rows to `traces`; when the context
    fills any of the new spans, create the temp table `target` of them filled. Return the
    hours whose rollup rows were corrected, and whether `target` was created."""
    bounds = {"lo": max(starts[0] - window_ns, 0), "hi": min(starts[1] + window_ns, _INT64_MAX)}
    _read(cur, source, bounds)
    hours = _fix_stored(cur)
    context = ", ".join(f"coalesce(was_{c}, {c})" for c in FIELDS)
    cur.execute(
        "INSERT INTO traces SELECT trace_key, trace_id, project, min_start_ns, max_start_ns, "
        f"{context} FROM wk_ctx"
    )
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


#: `trace_context` as version 9 made it, before its rows moved into `traces` (version 11).
V9_DDL = (
    "CREATE TABLE trace_context (project VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
    "start_ns BIGINT NOT NULL, user_id VARCHAR, session_id VARCHAR, feature VARCHAR)"
)


def backfill() -> tuple[str, ...]:
    """Version 8's statements: build the context of the stored spans in `trace_context` and
    fill the spans from it (the rollups keyed by user or feature are rebuilt after)."""
    sets = ", ".join(f"{n} = coalesce(spans.{n}, c.{n})" for n in FIELDS)
    missing = " OR ".join(f"(spans.{n} IS NULL AND c.{n} IS NOT NULL)" for n in FIELDS)
    return (
        V9_DDL,
        f"INSERT INTO trace_context SELECT * FROM (SELECT project, trace_id, "
        f"min(start_ns) AS start_ns, {_traces.FIRSTS} FROM spans GROUP BY project, trace_id) "
        f"WHERE {_ANY} ORDER BY start_ns",
        f"UPDATE spans SET {sets} FROM trace_context c WHERE c.project = spans.project "
        f"AND c.trace_id = spans.trace_id AND ({missing})",
    )


def rebuild_with_starts() -> tuple[str, ...]:
    """Version 9's statements: rebuild `trace_context` with each trace's first start, in
    start order (whether or not the table has a `start_ns` column yet)."""
    return (
        "CREATE TEMP TABLE wk_old_context AS SELECT c.project, c.trace_id, "
        f"coalesce(t.lo, 0) AS start_ns, {', '.join(f'c.{n}' for n in FIELDS)} "
        "FROM trace_context c LEFT JOIN (SELECT trace_id, min(min_start_ns) AS lo "
        "FROM traces GROUP BY trace_id) t ON t.trace_id = c.trace_id",
        "DROP TABLE trace_context",
        V9_DDL,
        "INSERT INTO trace_context SELECT * FROM wk_old_context ORDER BY start_ns",
        "DROP TABLE wk_old_context",
    )
