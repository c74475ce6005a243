"""Rows as columns of bytes: how ingest workers hand their batches to the server.

A worker used to send back one tuple of values per row, which the server unpickled and
turned into `SpanRow` objects, then into Arrow columns: some 60 Python objects per span,
alive while a batch filled and was written, interleaved with everything else the server
allocates. The heap grew with each burst and could not shrink (a live object pins its
whole arena). Here a column is a few `bytes` objects laid out as Arrow lays out its
buffers, so the store builds its Arrow table over them without a copy (`store`'s
`arrow_tables`) and the server holds a handful of objects per batch whatever its size.

Layout of a column (`Column`): its kind, then
- `"q"` (int64) / `"d"` (float64): the values as machine words (a null is 0);
- `"s"` (UTF-8 text) / `"b"` (bytes): the values joined, and int32 offsets (n + 1 of them);
- one byte per row, 1 where the value is null, or `b""` when no value is null.

Plain Python (the `array` module): workers and the SDK side import no Arrow. Text that
cannot be UTF-8 (a lone surrogate) gets "?" for the bad character, where Arrow refused the
whole column; an integer past int64 raises (the worker sets its record aside).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from itertools import accumulate
from operator import attrgetter
from typing import Any

from watchkeeper.model._span import PackedPayload, PayloadRow, SpanBatch, SpanRow

#: (kind, values, offsets, nulls): see the module docstring.
Column = tuple[str, bytes, bytes, bytes]

_LITTLE = sys.byteorder == "little"


def _kind(annotation: str) -> str:
    if annotation.startswith("int"):
        return "q"
    if annotation.startswith("float"):
        return "d"
    if annotation.startswith("bytes"):
        return "b"
    return "s"


@dataclass(frozen=True, slots=True)
class RowType:
    """How the rows of one dataclass become columns: its fields, their kinds, a getter."""

    cls: Any
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    values: attrgetter[Any]

    @classmethod
    def of(cls, row_cls: Any) -> RowType:
        """The column layout of a row dataclass (its fields, in order)."""
        fs = fields(row_cls)
        names = tuple(f.name for f in fs)
        return cls(row_cls, names, tuple(_kind(str(f.type)) for f in fs), attrgetter(*names))


SPANS = RowType.of(SpanRow)
PAYLOADS = RowType.of(PayloadRow)
PACKED = RowType.of(PackedPayload)


@dataclass(frozen=True, slots=True)
class Columns:
    """`length` rows of one `RowType` as one `Column` per field, in field order."""

    length: int
    columns: tuple[Column, ...]


def _encode(kind: str, values: Sequence[Any]) -> Column:
    nulls = bytes(v is None for v in values) if None in values else b""
    if kind in ("q", "d"):
        words = array(kind, [0 if v is None else v for v in values] if nulls else values)
        if not _LITTLE:
            words.byteswap()
        return kind, words.tobytes(), b"", nulls
    if kind == "s":
        text = [("" if v is None else v) for v in values] if nulls else values
        joined = "".join(text)
        if joined.isascii():  # most columns: a character is a byte, one encode for all
            return kind, joined.encode(), _offsets(map(len, text)), nulls
        parts = [v.encode("utf-8", "replace") for v in text]
    else:
        parts = [b"" if v is None else v for v in values]
    return kind, b"".join(parts), _offsets(map(len, parts)), nulls


def _offsets(lengths: Iterable[int]) -> bytes:
    offsets = array("i", accumulate(lengths, initial=0))
    if not _LITTLE:
        offsets.byteswap()
    return offsets.tobytes()


def to_columns(rows: Sequence[Any], row_type: RowType) -> Columns:
    """The rows (all of `row_type`) as columns."""
    if not rows:
        return Columns(0, tuple((k, b"", b"\0\0\0\0" if k in "sb" else b"", b"")
                                for k in row_type.kinds))  # fmt: skip
    transposed = zip(*map(row_type.values, rows), strict=True)
    return Columns(
        len(rows), tuple(_encode(k, v) for k, v in zip(row_type.kinds, transposed, strict=True))
    )


def _decode(column: Column, length: int) -> list[Any]:
    kind, data, offsets, nulls = column
    if kind in ("q", "d"):
        words = array(kind)
        words.frombytes(data)
        if not _LITTLE:
            words.byteswap()
        values: list[Any] = words.tolist()
    else:
        ends = array("i")
        ends.frombytes(offsets)
        if not _LITTLE:
            ends.byteswap()
        raw = [data[ends[i] : ends[i + 1]] for i in range(length)]
        values = [b.decode() for b in raw] if kind == "s" else raw
    if nulls:
        values = [None if n else v for v, n in zip(values, nulls, strict=True)]
    return values


def from_columns(cols: Columns, row_type: RowType) -> list[Any]:
    """The rows back (the slow way: for stores without a columnar write path, and tests)."""
    if not cols.length:
        return []
    values = [_decode(c, cols.length) for c in cols.columns]
    return [row_type.cls(*row) for row in zip(*values, strict=True)]


@dataclass(slots=True)
class ColumnBatch:
    """Spans and their payloads as columns, one chunk per spool record: the batch the
    ingest path hands its store. `packed`: payloads encoded by the store's codec."""

    spans: list[Columns] = field(default_factory=list)
    payloads: list[Columns] = field(default_factory=list)
    packed: bool = False
    #: The spans as one Arrow table, kept by the first to build it (`store._arrow.
    #: span_table`): the store's write and the span metrics after it read the same one.
    spans_arrow: Any = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return sum(c.length for c in self.spans)

    @property
    def payload_type(self) -> RowType:
        """The layout of the payload chunks."""
        return PACKED if self.packed else PAYLOADS

    @classmethod
    def of(cls, batch: SpanBatch, packed: bool) -> ColumnBatch:
        """One chunk of a row batch (its payloads all packed, or none)."""
        payload_type = PACKED if packed else PAYLOADS
        return cls(
            [to_columns(batch.spans, SPANS)],
            [to_columns(batch.payloads, payload_type)],
            packed,
        )

    def extend(self, other: ColumnBatch) -> None:
        """Add the chunks of another batch (its payloads packed as these are)."""
        if not other.spans:
            return
        if self.spans and other.packed != self.packed:
            raise ValueError("payloads packed in one batch and not in the other")
        self.spans.extend(other.spans)
        self.payloads.extend(other.payloads)
        self.packed = other.packed
        self.spans_arrow = None

    def chunks(self, lo: int, hi: int) -> ColumnBatch:
        """Chunks lo..hi-1."""
        return ColumnBatch(self.spans[lo:hi], self.payloads[lo:hi], self.packed)

    def rows(self) -> SpanBatch:
        """The batch as row objects."""
        pt = self.payload_type
        return SpanBatch(
            [r for c in self.spans for r in from_columns(c, SPANS)],
            [r for c in self.payloads for r in from_columns(c, pt)],
        )
