"""Turn result rows into the `Store` result dataclasses (the same for every backend)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from watchkeeper.errors import ValidationError
from watchkeeper.model import MAX_TIME_NS, ScoreRow, SpanRow
from watchkeeper.store._protocol import Activity, Heatmap, ScoreSummary, Summary

_NS_PER_MS = 1_000_000


def _ms(ns: Any) -> float | None:
    return None if ns is None else float(ns) / _NS_PER_MS


def summary_from_row(row: Sequence[Any]) -> Summary:
    """A `Summary` from the SUMMARY_WIDTH columns `render.summary_exprs` selects."""
    count = int(row[0] or 0)
    qs = list(row[6] or []) if count else []
    p50, p90, p95, p99 = (_ms(q) for q in qs) if len(qs) == 4 else (None,) * 4
    return Summary(
        count=count,
        success=int(row[1] or 0),
        errors=int(row[2] or 0),
        timeouts=int(row[3] or 0),
        fallbacks=int(row[4] or 0),
        rejected=int(row[5] or 0),
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        avg_ms=_ms(row[7]) if count else None,
        max_ms=_ms(row[8]) if count else None,
        input_tokens=int(row[9] or 0),
        output_tokens=int(row[10] or 0),
        cache_read_tokens=int(row[11] or 0),
        cache_write_tokens=int(row[12] or 0),
        reasoning_tokens=int(row[13] or 0),
        cost_usd=float(row[14] or 0.0),
        missing_price=int(row[15] or 0),
        first_ns=int(row[16]) if count and row[16] is not None else None,
        last_ns=int(row[17]) if count and row[17] is not None else None,
    )


def heatmap_from_rows(
    rows: Sequence[Sequence[Any]], step_ns: int, bounds_ms: Sequence[float], span: tuple[int, int]
) -> Heatmap:
    """A dense heatmap from (bucket, latency index, count) rows; `span` = first/last bucket."""
    first, last = span
    starts = list(range(first, last + step_ns, step_ns)) if rows else []
    index = {b: i for i, b in enumerate(starts)}
    counts = [[0] * (len(bounds_ms) + 1) for _ in starts]
    for bucket, level, n in rows:
        counts[index[int(bucket)]][int(level)] = int(n)
    return Heatmap(step_ns, starts, [float(b) for b in bounds_ms], counts)


def span_from_row(row: Sequence[Any]) -> SpanRow:
    """A `SpanRow` from a row in `SPAN_COLUMNS` order."""
    return SpanRow(*row)


def score_from_row(row: Sequence[Any]) -> ScoreRow:
    """A `ScoreRow` from a row in `SCORE_COLUMNS` order."""
    return ScoreRow(*row)


def score_summary_from_row(row: Sequence[Any]) -> ScoreSummary:
    """A `ScoreSummary` from (name, count, avg, passed, low)."""
    name, count, avg, passed, low = row
    count = int(count)
    return ScoreSummary(
        name=str(name),
        count=count,
        avg=None if avg is None else float(avg),
        pass_rate=int(passed or 0) / count if count else None,
        low_share=int(low or 0) / count if count else None,
    )


def activity_from_row(row: Sequence[Any]) -> Activity:
    """An `Activity` from the columns `render.activity_query` selects."""
    key, traces, spans, errors, first, last, cost, tin, tout = row
    return Activity(
        key=str(key),
        traces=int(traces),
        spans=int(spans),
        errors=int(errors),
        first_ns=int(first),
        last_ns=int(last),
        cost_usd=float(cost),
        input_tokens=int(tin),
        output_tokens=int(tout),
    )


#: A page cursor as /openapi.json declares it: every text of this shape is a position.
CURSOR_PATTERN = r"^[0-9]{1,19}-[0-9A-Za-z_]{1,64}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(start_ns: int, span_id: str) -> str:
    """The page cursor of the keyset position (start_ns, span_id): `<start_ns>-<span_id>`.

    Clients pass it back as they got it; its shape is declared (`CURSOR_PATTERN`) so that any
    text of that shape is a position, and the schema says exactly which cursors are taken.
    """
    return f"{start_ns}-{span_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The keyset position of a cursor; ValidationError when it is not of a cursor's shape."""
    if not _CURSOR.fullmatch(cursor):
        raise ValidationError("invalid cursor: pass back the next_cursor of a page")
    start, _, span = cursor.partition("-")
    return min(int(start), MAX_TIME_NS), span  # the store's times are int64
