"""A trace's user, session and feature on ClickHouse: the same answers as `_trace_context`
(DuckDB), spelled for an engine without multi-statement transactions.

Per write: the batch's context per trace (the root's value first, then the earliest span's)
is merged with what `trace_context` holds for the trace within the window (the value of the
earliest row holding one wins); the new spans' NULL fields are filled from it before they
are inserted; a row carrying the merged context at the write's start is appended, so a span
of the trace finds it near the stored spans nearest to it, not only near the one that
brought it; the spans stored before that lack a field just learned are filled by one
lightweight `UPDATE` (a patch part, visible to every read at once). A span's own value
always wins. Before that update, those spans move in the rollups keyed by user or feature
(`move_queries`: a retracting partial row under the old key, one under the new key), as on
DuckDB; the views roll up inserts only, never an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.store import _rollup as ru
from watchkeeper.store._context_arrow import filled
from watchkeeper.store._dialect import CLICKHOUSE, Params
from watchkeeper.store._render import Query
from watchkeeper.store._traces import CONTEXT as FIELDS

_Trace = tuple[str, str]  # (project, trace_id)


def strings_sql(values: pa.Array | pa.ChunkedArray) -> str:
    """A ClickHouse array literal of these (non-null) strings, escaped column-wise: binding
    them through the driver escaped each in Python, a tenth of a write at 10k spans."""
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), "'", "\\'")
    return "['" + "', '".join(escaped.to_pylist()) + "']"


def stored_query(batch: pa.Table, lo: int, hi: int) -> Query:
    """The context rows of the batch's traces (`of_batch`) that start between `lo` and
    `hi`, earliest first."""
    projects = strings_sql(pc.unique(batch["project"]))
    sql = (
        f"SELECT project, trace_id, start_ns, {', '.join(FIELDS)} FROM trace_context "
        f"WHERE start_ns BETWEEN {int(lo)} AND {int(hi)} AND project IN {projects} "
        f"AND trace_id IN {strings_sql(batch['trace_id'])} ORDER BY start_ns"
    )
    return Query(sql, {})


def of_rows(rows: Sequence[Sequence[Any]]) -> dict[_Trace, dict[str, str]]:
    """The stored context per trace from `stored_query`'s rows (earliest first): each
    field's first value."""
    out: dict[_Trace, dict[str, str]] = {}
    for project, trace_id, _, *values in rows:
        ctx = out.setdefault((str(project), str(trace_id)), {})
        for f, v in zip(FIELDS, values, strict=True):
            if v is not None:
                ctx.setdefault(f, str(v))
    return out


@dataclass(slots=True)
class Plan:
    """What a write does with the contexts: the spans filled (as the `spans` table's Arrow
    columns), `trace_context` rows to append, and the fields each trace learned (those
    with spans stored before get them by `update_query`)."""

    table: pa.Table
    contexts: pa.Table  # project, trace_id, start_ns, FIELDS
    #: per trace that learned a field: project, trace_id, FIELDS (NULL: not learned)
    learning: pa.Table
    #: what `learned` keeps of `learning`: the writer sets it
    learned: dict[_Trace, dict[str, str]] = field(default_factory=dict)


def learned(learning: pa.Table, stored: set[str]) -> dict[_Trace, dict[str, str]]:
    """The fields learned by the traces of `learning` with spans stored (`stored`: their
    ids), as `update_query` and `move_queries` take them."""
    mine = learning.filter(
        pc.is_in(learning["trace_id"], value_set=pa.array(sorted(stored), pa.string()))
    )
    values = (mine[f].to_pylist() for f in FIELDS)
    return {
        (p, t): {f: v for f, v in zip(FIELDS, vs, strict=True) if v is not None}
        for p, t, *vs in zip(*_pairs(mine), *values, strict=True)
    }


def plan(spans: pa.Table, batch: pa.Table, stored: dict[_Trace, dict[str, str]]) -> Plan:
    """Fill `spans` from the merged contexts (`batch`: their `of_batch`; `stored`: what
    `trace_context` holds, whose values win); the rows and the learned fields to store."""
    merged, learns = batch, []
    known = [stored.get((p, t), {}) for p, t in zip(*_pairs(batch), strict=True)]
    for f in FIELDS:
        was = pa.array([k.get(f) for k in known], pa.string())
        merged = merged.set_column(merged.schema.get_field_index(f), f, pc.coalesce(was, batch[f]))
        learns.append(pc.and_(pc.is_valid(batch[f]), pc.is_null(was)))
    # spans stored before (with or without a context) lack what the batch brings first
    learning = batch.select(["project", "trace_id"])
    for f, learns_f in zip(FIELDS, learns, strict=True):
        learning = learning.append_column(f, pc.if_else(learns_f, batch[f], None))
    some = pc.or_(pc.or_(learns[0], learns[1]), learns[2])
    valid = [pc.is_valid(merged[f]) for f in FIELDS]
    anything = pc.or_(pc.or_(valid[0], valid[1]), valid[2])
    # each write's row carries the context: a later span finds it nearby
    return Plan(filled(spans, merged), merged.filter(anything), learning.filter(some))


def _pairs(table: pa.Table) -> tuple[list[str], list[str]]:
    return table["project"].to_pylist(), table["trace_id"].to_pylist()


def _learning(p: Params, learned: dict[str, dict[str, str]], f: str) -> tuple[str, str] | None:
    """(the traces that learned field `f` as a bound array, the value each learned: an
    expression of `trace_id`), or None when none learned it."""
    pairs = sorted((t, v[f]) for t, v in learned.items() if f in v)
    if not pairs:
        return None
    ids, vals = p([t for t, _ in pairs]), p([v for _, v in pairs])
    return ids, f"arrayElement({vals}, indexOf({ids}, trace_id))"


def update_query(project: str, learned: dict[str, dict[str, str]], lo: int, hi: int) -> Query:
    """Fill the NULL fields of one project's stored spans (starting between `lo` and `hi`)
    of the traces that learned them (`learned`: trace id -> field -> value)."""
    p = Params(CLICKHOUSE)
    sets, missing = [], []
    for f in FIELDS:
        found = _learning(p, learned, f)
        if found is None:
            continue
        ids, value = found
        sets.append(f"{f} = coalesce({f}, if(has({ids}, trace_id), {value}, NULL))")
        missing.append(f"({f} IS NULL AND has({ids}, trace_id))")
    sql = (
        f"UPDATE spans SET {', '.join(sets)} WHERE project = {p(project)} "
        f"AND start_ns BETWEEN {p(lo)} AND {p(hi)} AND ({' OR '.join(missing)})"
    )
    return Query(sql, p.values)


#: The rollups keyed by a field of the context, and that field.
_KEYED = ((ru.USERS, "user_id"), (ru.TOTALS, "feature"))


def move_queries(project: str, learned: dict[str, dict[str, str]], lo: int, hi: int) -> list[Query]:
    """Move the spans `update_query` fills in the rollups keyed by what they learn: per
    table, a retracting row of them under the old key (NULL), one under the new key. Run
    before the update, which they read the spans as."""
    out = []
    for table, f in _KEYED:
        p = Params(CLICKHOUSE)
        found = _learning(p, learned, f)
        if found is None:
            continue
        ids, value = found
        where = (
            f"project = {p(project)} AND start_ns BETWEEN {p(lo)} AND {p(hi)} "
            f"AND {f} IS NULL AND has({ids}, trace_id)"
        )
        retract = ru.insert_sql("spans", where, table, retract=True, d=CLICKHOUSE)
        # the new value set outside the subquery that selects the spans: an alias named as
        # the column would otherwise stand for it in the WHERE
        moved = f"(SELECT * REPLACE ({value} AS {f}) FROM (SELECT * FROM spans WHERE {where}))"
        out += [
            Query(retract, p.values),
            Query(ru.insert_sql(moved, table=table, d=CLICKHOUSE), p.values),
        ]
    return out


DDL = (
    "CREATE TABLE IF NOT EXISTS trace_context (project LowCardinality(String), "
    "trace_id String, start_ns Int64, user_id Nullable(String), session_id Nullable(String), "
    "feature Nullable(String), INDEX trace_bloom trace_id TYPE bloom_filter(0.001) "
    "GRANULARITY 1) ENGINE = ReplacingMergeTree "
    "PARTITION BY toYYYYMMDD(toDateTime(intDiv(start_ns, 1000000000), 'UTC')) "
    "ORDER BY (project, start_ns, trace_id) SETTINGS ttl_only_drop_parts = 1"
)
