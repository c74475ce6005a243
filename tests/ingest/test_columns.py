"""Rows as byte columns (`model.ColumnBatch`): what the workers send, what the store reads."""

from __future__ import annotations

import math

import pytest

from watchkeeper.model import PACKED, SPANS, ColumnBatch, PackedPayload, SpanBatch, SpanRow
from watchkeeper.model._columns import from_columns, to_columns
from watchkeeper.store._arrow import arrow_tables, span_table, spans_table
from watchkeeper.store._payload import PayloadCodec

BIG = (1 << 63) - 1


def _rows() -> list[SpanRow]:
    return [
        SpanRow("p", "a" * 32, "b" * 16, "", "plain", 0, 1),
        SpanRow(
            "p",
            "c" * 32,
            "d" * 16,
            "b" * 16,
            "ünïcødé ✓ 🚀",
            BIG,
            BIG,
            user_id="",
            input_tokens=-(1 << 63),
            cost_usd=math.inf,
            http_status_code=599,
        ),
        SpanRow("p", "e" * 32, "f" * 16, "", "", 5, 0, user_id=None, cost_usd=0.25),
    ]


def test_rows_come_back_as_they_went() -> None:
    rows = _rows()
    assert from_columns(to_columns(rows, SPANS), SPANS) == rows
    assert from_columns(to_columns([], SPANS), SPANS) == []
    back = from_columns(to_columns(rows, SPANS), SPANS)
    assert back[1].user_id == "" and back[2].user_id is None  # empty is not null


def test_text_that_is_not_utf8_costs_a_character_not_the_row() -> None:
    (row,) = from_columns(to_columns([SpanRow("p", "a", "b", "", "x\ud800y", 1, 1)], SPANS), SPANS)
    assert row.name == "x?y"


def test_a_value_past_int64_is_refused() -> None:
    with pytest.raises(OverflowError):
        to_columns([SpanRow("p", "a", "b", "", "n", 1 << 63, 1)], SPANS)


def test_the_store_reads_the_columns_as_it_reads_the_rows() -> None:
    rows = _rows()
    codec = PayloadCodec()
    payloads = [PackedPayload("p", "a" * 32, "b" * 16, 0, None, b"\x00meta")]
    batch = ColumnBatch()
    batch.extend(ColumnBatch.of(SpanBatch(rows[:1], payloads), packed=True))
    batch.extend(ColumnBatch())  # a record that gave nothing
    batch.extend(ColumnBatch.of(SpanBatch(rows[1:], []), packed=True))
    spans, packed = arrow_tables(batch, codec)
    assert spans.equals(spans_table(rows).cast(spans.schema))
    assert spans.schema == spans_table(rows).schema
    assert span_table(batch).to_pylist() == spans_table(rows).to_pylist()
    assert packed.to_pylist() == [
        {"project": "p", "trace_id": "a" * 32, "span_id": "b" * 16, "start_ns": 0,
         "io": None, "meta": b"\x00meta"}
    ]  # fmt: skip
    assert from_columns(batch.payloads[0], PACKED) == payloads
    assert batch.chunks(1, 2).rows() == SpanBatch(rows[1:], [])
    with pytest.raises(ValueError, match="packed"):
        batch.extend(ColumnBatch.of(SpanBatch(rows, []), packed=False))
