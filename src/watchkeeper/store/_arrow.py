"""Arrow tables for both engines' bulk inserts (DuckDB's and ClickHouse's): from row
objects, column by column, or over the byte columns the ingest workers send
(`model.ColumnBatch`), without a copy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.model import (
    PACKED,
    SPANS,
    Column,
    ColumnBatch,
    Columns,
    PackedPayload,
    PayloadRow,
    RowType,
    ScoreRow,
    SpanBatch,
    SpanRow,
)
from watchkeeper.store._duckdb_schema import sql_type
from watchkeeper.store._payload import PayloadCodec

_ARROW = {"BIGINT": pa.int64(), "DOUBLE": pa.float64(), "INTEGER": pa.int32()}


def _table(rows: Sequence[Any], row_type: Any) -> pa.Table:
    names = [f.name for f in fields(row_type)]
    # one C-level attrgetter per row, then a transpose: far fewer Python steps than a
    # getattr per cell
    values = list(zip(*map(attrgetter(*names), rows), strict=True)) or [()] * len(names)
    columns = [
        pa.array(column, type=_ARROW.get(sql_type(n), pa.string()))
        for n, column in zip(names, values, strict=True)
    ]
    return pa.Table.from_arrays(columns, names=names)


def spans_table(rows: Sequence[SpanRow]) -> pa.Table:
    """The `spans` columns of these rows."""
    return _table(rows, SpanRow)


def scores_table(rows: Sequence[ScoreRow]) -> pa.Table:
    """The `scores` columns of these rows."""
    return _table(rows, ScoreRow)


def keys_table(rows: Sequence[SpanRow]) -> pa.Table:
    """(project, trace_id, span_id) of these rows."""
    return pa.table(
        {
            "project": [r.project for r in rows],
            "trace_id": [r.trace_id for r in rows],
            "span_id": [r.span_id for r in rows],
        }
    )


def payloads_table(rows: Sequence[PayloadRow | PackedPayload], codec: PayloadCodec) -> pa.Table:
    """The `payloads` columns of these rows, text and documents compressed."""
    io, meta = codec.blobs(rows)
    return pa.table(
        {
            "project": pa.array([r.project for r in rows], pa.string()),
            "trace_id": pa.array([r.trace_id for r in rows], pa.string()),
            "span_id": pa.array([r.span_id for r in rows], pa.string()),
            "start_ns": pa.array([r.start_ns for r in rows], pa.int64()),
            "io": pa.array(io, pa.binary()),
            "meta": pa.array(meta, pa.binary()),
        }
    )


_KIND = {"q": pa.int64(), "d": pa.float64(), "s": pa.string(), "b": pa.binary()}
_PAYLOAD_TYPES = {"start_ns": pa.int64(), "io": pa.binary(), "meta": pa.binary()}


def _array(column: Column, length: int, target: pa.DataType) -> pa.Array:
    kind, data, offsets, nulls = column
    validity, null_count = None, 0
    if nulls:
        mask = np.frombuffer(nulls, np.bool_)
        null_count = int(mask.sum())
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    buffers = [validity, pa.py_buffer(data)]
    if kind in ("s", "b"):
        buffers.insert(1, pa.py_buffer(offsets))
    arr = pa.Array.from_buffers(_KIND[kind], length, buffers, null_count)
    return arr if arr.type == target else arr.cast(target)


def _chunk_table(cols: Columns, row_type: RowType, types: dict[str, pa.DataType]) -> pa.Table:
    names = list(row_type.names)
    arrays = [
        _array(c, cols.length, types.get(n, pa.string()))
        for n, c in zip(names, cols.columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, names=names)


def _span_types() -> dict[str, pa.DataType]:
    return {n: _ARROW.get(sql_type(n), pa.string()) for n in SPANS.names}


def arrow_tables(batch: SpanBatch | ColumnBatch, codec: PayloadCodec) -> tuple[pa.Table, pa.Table]:
    """(spans, payloads) of a batch as the `spans_table` and `payloads_table` would build
    them; over a `ColumnBatch` of packed payloads, without a copy of the values."""
    if isinstance(batch, SpanBatch):
        return spans_table(batch.spans), payloads_table(batch.payloads, codec)
    if not batch.packed:  # a store's codec was not offered to ingest: pack here
        rows = batch.rows()
        return spans_table(rows.spans), payloads_table(rows.payloads, codec)
    payloads = [_chunk_table(c, PACKED, _PAYLOAD_TYPES) for c in batch.payloads]
    return span_table(batch), (
        pa.concat_tables(payloads) if payloads else payloads_table([], codec)
    )


def span_table(batch: SpanBatch | ColumnBatch) -> pa.Table:
    """The `spans` columns of a batch (over a `ColumnBatch`'s bytes, without a copy; built
    once a batch, see `ColumnBatch.spans_arrow`)."""
    if isinstance(batch, SpanBatch):
        return spans_table(batch.spans)
    if batch.spans_arrow is None:
        types = _span_types()
        chunks = [_chunk_table(c, SPANS, types) for c in batch.spans]
        batch.spans_arrow = pa.concat_tables(chunks) if chunks else spans_table([])
    table: pa.Table = batch.spans_arrow
    return table


def first_of_each_key(table: pa.Table) -> pa.Table:
    """The first row of each (project, trace_id, span_id), in order (a batch may hold a
    span twice); the table itself when its keys are distinct (the usual case)."""
    n = table.num_rows
    if n < 2 or pc.count_distinct(table["span_id"]).as_py() == n:
        return table
    # span ids repeat across traces (some tracers number spans 1, 2, 3…): the whole key
    keys = pc.binary_join_element_wise(table["project"], table["trace_id"], table["span_id"], "\0")
    if pc.count_distinct(keys).as_py() == n:
        return table
    numbered = table.append_column("wk_i", pa.array(np.arange(n, dtype=np.int64)))
    firsts = numbered.group_by(["project", "trace_id", "span_id"], use_threads=False).aggregate(
        [("wk_i", "min")]
    )
    return table.take(pc.sort_indices(firsts["wk_i_min"]))
