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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.model import SpanRow
from watchkeeper.store import _rollup as ru
from watchkeeper.store._dialect import CLICKHOUSE, Params
from watchkeeper.store._duckdb_arrow import spans_table
from watchkeeper.store._render import Query

FIELDS = ("user_id", "session_id", "feature")
_Trace = tuple[str, str]  # (project, trace_id)


@dataclass(slots=True)
class Context:
    """What is known of one trace: its earliest start and the first value of each field."""

    start_ns: int
    values: dict[str, str] = field(default_factory=dict)


def of_batch(spans: Sequence[SpanRow]) -> dict[_Trace, Context]:
    """Per trace of `spans`: the earliest start and, per field, the root's value, else the
    earliest span's."""
    out: dict[_Trace, Context] = {}
    for s in sorted(spans, key=lambda s: (s.parent_span_id != "", s.start_ns)):
        ctx = out.setdefault((s.project, s.trace_id), Context(s.start_ns))
        ctx.start_ns = min(ctx.start_ns, s.start_ns)
        for f in FIELDS:
            value = getattr(s, f)
            if value is not None:
                ctx.values.setdefault(f, value)
    return out


def stored_query(traces: Iterable[_Trace], lo: int, hi: int) -> Query:
    """The context rows of these traces that start between `lo` and `hi`, earliest first."""
    p = Params(CLICKHOUSE)
    pairs = sorted(traces)
    projects, ids = p(sorted({t[0] for t in pairs})), p(sorted({t[1] for t in pairs}))
    sql = (
        f"SELECT project, trace_id, start_ns, {', '.join(FIELDS)} FROM trace_context "
        f"WHERE start_ns BETWEEN {p(lo)} AND {p(hi)} AND has({projects}, project) "
        f"AND has({ids}, trace_id) ORDER BY start_ns"
    )
    return Query(sql, p.values)


def of_rows(rows: Iterable[Sequence[Any]]) -> dict[_Trace, Context]:
    """The stored context per trace from `stored_query`'s rows (earliest first)."""
    out: dict[_Trace, Context] = {}
    for project, trace_id, start, *values in rows:
        ctx = out.setdefault((str(project), str(trace_id)), Context(int(start)))
        for f, v in zip(FIELDS, values, strict=True):
            if v is not None:
                ctx.values.setdefault(f, str(v))
    return out


@dataclass(slots=True)
class Plan:
    """What a write does with the contexts: the spans filled (as the `spans` table's Arrow
    columns), rows to append, fields learned by traces stored before."""

    table: pa.Table
    rows: list[tuple[Any, ...]]  # trace_context rows: project, trace_id, start_ns, FIELDS
    learned: dict[_Trace, dict[str, str]]


def plan(spans: Sequence[SpanRow], stored: dict[_Trace, Context]) -> Plan:
    """Fill `spans` from the merged contexts; the rows and the learned fields to store."""
    batch = of_batch(spans)
    merged: dict[_Trace, dict[str, str]] = {}
    rows: list[tuple[Any, ...]] = []
    learned: dict[_Trace, dict[str, str]] = {}
    for key, ctx in batch.items():
        was = stored.get(key)
        known = was.values if was is not None else {}
        values = {**ctx.values, **known}  # what was stored first wins
        merged[key] = values
        new = {f: v for f, v in ctx.values.items() if f not in known}
        if values:  # each write's row carries the context: a later span finds it nearby
            rows.append((*key, ctx.start_ns, *(values.get(f) for f in FIELDS)))
        if new:
            learned[key] = new  # spans stored before (with or without a context) lack them
    return Plan(_filled(spans, merged), rows, learned)


def rows_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """`trace_context` rows (project, trace_id, start_ns, FIELDS) as an Arrow table."""
    columns = list(zip(*rows, strict=True))
    types = [pa.string(), pa.string(), pa.int64(), *(pa.string() for _ in FIELDS)]
    names = ["project", "trace_id", "start_ns", *FIELDS]
    return pa.Table.from_arrays(
        [pa.array(c, t) for c, t in zip(columns, types, strict=True)], names=names
    )


def _filled(spans: Sequence[SpanRow], merged: dict[_Trace, dict[str, str]]) -> pa.Table:
    """The `spans` columns of `spans`, each NULL field taken from its trace's context: one
    column operation per field (a copy of each span to fill was a fifth of a write)."""
    table = spans_table(spans)
    traces = list(merged)
    at = {key: i for i, key in enumerate(traces)}
    rows = pa.array([at[(s.project, s.trace_id)] for s in spans], pa.int32())
    for f in FIELDS:
        known = pa.array([merged[key].get(f) for key in traces], pa.string())
        if known.null_count == len(known):
            continue
        column = pc.coalesce(table.column(f).combine_chunks(), known.take(rows))
        table = table.set_column(table.schema.get_field_index(f), f, column)
    return table


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
