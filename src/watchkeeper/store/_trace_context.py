"""A trace's user, session and feature, applied to every span of the trace.

Plain OpenTelemetry apps put `user.id`, `session.id` and the feature tag on the root span
only, while the tokens and cost are on its child LLM spans; children often arrive first.
Each write appends to `traces` a row per (project, trace) of its batch (`_traces`): the
start range of those spans and the trace's context as the write applied it, the first
non-null value of each field: the one stored before (the earliest row's), else the batch's
(its root's first, then its earliest span's). A write:

1. takes its batch's context per trace from the spans' Arrow columns (`_context_arrow`),
   and looks up the row ids of the rows stored before for those traces, near its spans
   (see below);
2. only when there are such rows (usually none: a batch's traces are new), reads from them
   each trace's stored context and whether, and where, it has spans; for traces whose
   context it learned and which have stored spans, fills those spans' NULL fields and moves
   them in the rollups keyed by user or feature (a partial row taking them out of the old
   key, one adding them to the new key), so sums stay exact without reading an hour of
   spans;
3. appends its rows, and fills its own spans' NULL fields from the context column by
   column in Arrow: the filled batch is stored without a copy of it in the engine.

A span's own value always wins. When a trace's root and children arrive in the same batch
step 3 does it all; step 2 runs only for traces already stored without their context.
Done in SQL with temporary tables (a copy of the batch to fill it), steps 1 and 3 took 15
statements a write, 4.4 µs/span of a 24 µs/span write (a fifth of the writer thread in
bench.ingest); in Arrow, 2 statements and 1.5 µs/span (bench batches of 10k spans).

**Near.** Trace ids are random, so a lookup by id cannot skip any part of the table and
would cost more with every trace stored. A write therefore looks only at the rows whose
start range meets the window (`window_ns`) around its batch's spans: rows are appended in
arrival order, so DuckDB's per-row-group min/max of the starts skips the rest. Within the
window it reads only the numeric key and the range of each row, to find its traces' rows,
and fetches those rows by row id when it found any. The window fills for the first hour of
a busy run (18M rows at 5k traces/s): joining the ids of all its rows to the batch's, as
this step did before, read every row's 32-character id and took the writer's time as the
window filled; the key alone is 4–8× cheaper to scan. A span that starts more than the
window away from every stored row of its trace keeps its own (NULL) fields.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.store import _rollup as ru
from watchkeeper.store import _traces
from watchkeeper.store._context_arrow import filled, of_batch

FIELDS = _traces.CONTEXT
#: How far (ns) a span may start from the stored spans of its trace it takes context from.
WINDOW_NS = 3600 * 10**9
_ANY = " OR ".join(f"{c} IS NOT NULL" for c in FIELDS)


def _new(x: str = "") -> str:
    """A field learned by this write (from `wk_ctx`, aliased `x`): none stored, one new."""
    return " OR ".join(f"({x}was_{c} IS NULL AND {x}{c} IS NOT NULL)" for c in FIELDS)


def _near(cur: Any, batch: pa.Table, bounds: dict[str, int]) -> list[int]:
    """The row ids of the stored rows of the traces of `batch` (registered as
    `wk_batch_ctx`) whose range meets the bounds, found by key (reading nothing else)."""
    ours = f"trace_key IN (SELECT {_traces.KEY_SQL} FROM wk_batch_ctx)"
    ids = batch["trace_id"]
    if not pc.all(pc.match_substring_regex(ids, f"^{_traces.HEX32}$")).as_py():
        # ids that ingest does not make: rare, and compared whole
        ours = (
            f"({ours} OR (trace_key IS NULL AND trace_id IN (SELECT trace_id FROM wk_batch_ctx "
            f"WHERE NOT regexp_full_match(trace_id, '{_traces.HEX32}'))))"
        )
    rows = cur.execute(
        f"SELECT rowid FROM traces WHERE max_start_ns >= $lo AND min_start_ns <= $hi AND {ours}",
        bounds,
    ).fetchall()
    return [int(r) for (r,) in rows]


def _merge(cur: Any, near: list[int]) -> tuple[pa.Table, set[int]]:
    """The context of each trace of `wk_batch_ctx` merged with its stored rows (the rows
    `near`: their values win), and the hours of the stored spans `_fix_stored` filled."""
    cur.register("wk_near_rows", pa.table({"r": pa.array(near, pa.int64())}))
    cur.execute(
        "CREATE TEMP TABLE wk_near AS SELECT * FROM traces "
        "WHERE rowid IN (SELECT r FROM wk_near_rows)"
    )
    cur.unregister("wk_near_rows")
    was = ", ".join(
        f"arg_min(k.{c}, k.min_start_ns) FILTER (WHERE k.{c} IS NOT NULL) AS was_{c}"
        for c in FIELDS
    )
    cur.execute(
        f"CREATE TEMP TABLE wk_ctx AS SELECT b.*, {was}, min(k.min_start_ns) AS was_lo, "
        "max(k.max_start_ns) AS was_hi FROM wk_batch_ctx b LEFT JOIN wk_near k "
        "ON k.project = b.project AND k.trace_id = b.trace_id "
        f"GROUP BY b.project, b.trace_id, b.start_ns, b.last_ns, "
        f"{', '.join(f'b.{c}' for c in FIELDS)}"
    )
    cur.execute("DROP TABLE wk_near")
    hours = _fix_stored(cur)
    context = ", ".join(f"coalesce(was_{c}, {c}) AS {c}" for c in FIELDS)
    merged = cur.sql(
        f"SELECT project, trace_id, start_ns, last_ns, {context} FROM wk_ctx"
    ).to_arrow_table()
    cur.execute("DROP TABLE wk_ctx")
    return merged, hours


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


_INT64_MAX = 2**63 - 1


def apply(
    cur: Any, spans: pa.Table, starts: tuple[int, int], window_ns: int = WINDOW_NS
) -> tuple[pa.Table, set[int]]:
    """Learn the context of the new `spans` (which start within `starts`), fix the spans
    stored before and append the write's rows to `traces`. Return the spans, their NULL
    fields filled from the context, and the hours whose rollup rows were corrected."""
    bounds = {"lo": max(starts[0] - window_ns, 0), "hi": min(starts[1] + window_ns, _INT64_MAX)}
    context = of_batch(spans, last=True)
    cur.register("wk_batch_ctx", context)
    near = _near(cur, context, bounds)
    hours: set[int] = set()
    if near:  # the usual case is none: every trace of the batch is new
        context, hours = _merge(cur, near)
        cur.register("wk_batch_ctx", context)
    cur.execute(
        f"INSERT INTO traces SELECT {_traces.KEY_SQL}, trace_id, project, start_ns, last_ns, "
        f"{', '.join(FIELDS)} FROM wk_batch_ctx"
    )
    cur.unregister("wk_batch_ctx")
    return filled(spans, context), hours


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
