"""A trace's context over a batch's Arrow columns, for both engines' writers: the batch's own
context per trace (`of_batch`), and the spans filled from a context (`filled`).

Column operations only: a Python object per trace or span was a fifth of a write.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.store._traces import CONTEXT as FIELDS

#: Separates the parts of a key joined into one string (ids and project names hold no NUL).
_SEP = "\x00"


def keys(table: pa.Table, names: Sequence[str] = ("project", "trace_id", "span_id")) -> pa.Array:
    """One string per row joining its `names` columns: a key `pc.is_in` and `pc.index_in`
    compare in one pass (Arrow has no multi-column membership test)."""
    joined = pc.binary_join_element_wise(*(table[n] for n in names), _SEP)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def of_batch(spans: pa.Table, *, last: bool = False) -> pa.Table:
    """Per trace of `spans` (project, trace_id): the earliest start (`start_ns`; with
    `last`, also the latest, `last_ns`) and, per field, the root's value, else the earliest
    span's (NULL: none of its spans has one)."""
    child = pc.not_equal(spans["parent_span_id"], "")
    order = pc.sort_indices(  # stable: among equal starts the batch's order decides
        pa.table({"child": child, "start": spans["start_ns"]}),
        sort_keys=[("child", "ascending"), ("start", "ascending")],
    )
    ordered = spans.select(["project", "trace_id", "start_ns", *FIELDS]).take(order)
    ranges = [("start_ns", "min"), *([("start_ns", "max")] if last else [])]
    grouped = ordered.group_by(["project", "trace_id"], use_threads=False).aggregate(
        [*ranges, *((f, "first") for f in FIELDS)]
    )
    names = ["project", "trace_id", *(f"start_ns_{fn}" for _, fn in ranges)]
    renamed = ["project", "trace_id", "start_ns", *(["last_ns"] if last else [])]
    firsts = [f"{f}_first" for f in FIELDS]
    return grouped.select(names + firsts).rename_columns(renamed + list(FIELDS))


def filled(spans: pa.Table, context: pa.Table) -> pa.Table:
    """The spans, each NULL field taken from its trace's row of `context` (project,
    trace_id, FIELDS): one column operation per field (a copy of each span to fill was a
    fifth of a write)."""
    at = pc.index_in(keys(spans, ("project", "trace_id")),
                     value_set=keys(context, ("project", "trace_id")))  # fmt: skip
    for f in FIELDS:
        known = context[f]
        if known.null_count == len(known):
            continue
        column = pc.coalesce(spans[f], known.take(at))
        spans = spans.set_column(spans.schema.get_field_index(f), f, column)
    return spans
