"""Newest-first reads without text, on every engine: the span list (and its cursor) and the
summary of the newest N read time windows below the newest hour that widen over gaps in
the data; every answer must be the one of a read of every span (`search_query` and
`summary_query` without a window)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.conftest import open_store
from watchkeeper.model import SpanBatch, SpanRow
from watchkeeper.store import SpanFilter
from watchkeeper.store import _render as r
from watchkeeper.store import _results as res
from watchkeeper.store._sql import SqlStore

SECOND = 10**9
DAY = 86_400 * SECOND
HOUR = 3600 * SECOND
T0 = 1_700_000_000 * SECOND
#: Groups of spans far apart in time (a busy minute, a quiet day, three spans an hour for
#: 60 hours, a year and three years before): (newest start, spans, step between starts).
GROUPS = (
    (T0, 120, SECOND // 4),
    (T0 - DAY, 30, 900 * SECOND),
    (T0 // HOUR * HOUR - 30 * DAY, 180, HOUR),  # more hours than a first window looks at,
    # on the hour: windows start there, ties on start across a window's edge
    (T0 - 365 * DAY, 25, SECOND),
    (T0 - 3 * 365 * DAY, 6, 3600 * SECOND),
)
ERROR_EVERY = 7  # one span in 7 failed
ROOT_EVERY = 3  # one span in 3 is a request (a root span)


def _spans() -> list[SpanRow]:
    """Spans of GROUPS, three of each start (the keyset on span id breaks the ties), span
    ids not in start order; costs exact in binary, so sums agree in any order."""
    spans = []
    for g, (end, n, step) in enumerate(GROUPS):
        for i in range(n):
            k = len(spans)
            spans.append(
                SpanRow(
                    "demo", f"{g:02x}{i:030x}", f"{(k * 7919) % 10_007:016x}",
                    "" if k % ROOT_EVERY == 0 else f"{k:016x}", "op", end - i // 3 * step,
                    1_000 + (k * 37) % 500, outcome="error" if k % ERROR_EVERY == 0 else "success",
                    input_tokens=k, cost_usd=(k % 8) / 4, cost_source="reported",
                )
            )  # fmt: skip
    newer = SpanRow("other", "f" * 32, "f" * 16, "", "op", T0 + DAY, 5)  # another project
    return [*spans, newer]


@pytest.fixture(scope="module")
def store(engine: str) -> Iterator[SqlStore]:
    """The spans, written in a few batches out of time order; newest-first reads in time
    windows on every engine (DuckDB's default is the one read of every span)."""
    store = open_store(engine)
    store.newest_windows = True
    spans = _spans()
    for batch in (spans[100:], spans[:100]):
        store.write(SpanBatch(batch))
    yield store
    store.close()


FILTERS = {
    "every span": SpanFilter("demo"),
    "errors": SpanFilter("demo", outcomes=("error",)),
    "requests": SpanFilter("demo", scope="requests"),
    "failed requests": SpanFilter("demo", scope="requests", outcomes=("error",)),
    "a range": SpanFilter("demo", start_ns=T0 - 400 * DAY, end_ns=T0 - 10 * SECOND),
    "errors of a range": SpanFilter(
        "demo", start_ns=T0 - 2 * DAY, end_ns=T0 - DAY + 1, outcomes=("error",)
    ),
    # on a column the hourly totals do not keep: a first window may hold too few
    "slow": SpanFilter("demo", min_duration_ms=0.0014),
    "slow errors": SpanFilter("demo", min_duration_ms=0.0012, outcomes=("error",)),
    "slow in a range": SpanFilter("demo", start_ns=T0 - 40 * DAY, min_duration_ms=0.00148),
    "nothing": SpanFilter("demo", start_ns=T0 + 10 * DAY),
    "another project": SpanFilter("other"),
}


def _wanted(f: SpanFilter) -> list[tuple[str, str]]:
    """What a read of every span answers, newest first."""
    spans = [
        s for s in _spans()
        if s.project == f.project
        and (f.start_ns is None or s.start_ns >= f.start_ns)
        and (f.end_ns is None or s.start_ns < f.end_ns)
        and (f.scope != "requests" or s.parent_span_id == "")
        and (not f.outcomes or s.outcome in f.outcomes)
        and (f.min_duration_ms is None or s.duration_ns >= round(f.min_duration_ms * 1e6))
    ]  # fmt: skip
    spans.sort(key=lambda s: (s.start_ns, s.span_id), reverse=True)
    return [(s.trace_id, s.span_id) for s in spans]


@pytest.mark.parametrize("limit", [1, 2, 5, 50, 1000])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_paging_through_every_span_newest_first(store: SqlStore, name: str, limit: int) -> None:
    f, got, cursor = FILTERS[name], [], None
    while True:
        page = store.search_spans(f, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        got += [(s.trace_id, s.span_id) for s in page.items]
        if page.next_cursor is None:
            break
        assert len(page.items) == limit
        cursor = page.next_cursor
    assert got == _wanted(f)


@pytest.mark.parametrize("limit", [1, 3, 40, 200])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_page_is_the_one_of_a_read_of_every_span(store: SqlStore, name: str, limit: int) -> None:
    """First page and its cursor, then the page after it, as without windows."""
    f = FILTERS[name]
    first = store.search_spans(f, limit=limit)
    rows = store._rows(r.search_query(f, store.dialect, limit + 1))
    assert first.items == [res.span_from_row(row) for row in rows[:limit]]
    assert (first.next_cursor is None) == (len(rows) <= limit)
    if first.next_cursor is not None:
        after = res.decode_cursor(first.next_cursor)
        rows = store._rows(r.search_query(f, store.dialect, limit, after))
        page = store.search_spans(f, limit=limit, cursor=first.next_cursor)
        assert page.items == [res.span_from_row(row) for row in rows]


@pytest.mark.parametrize("last_n", [1, 2, 4, 10, 50, 100, 130, 200, 350, 10_000])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_summary_of_the_newest_n_is_the_one_of_every_span(
    store: SqlStore, name: str, last_n: int
) -> None:
    """Ties on start at the N-th span included: the newest N are those the list shows."""
    f = FILTERS[name]
    (row,) = store._rows(r.summary_query(f, store.dialect, last_n, by_span=True))
    got = store.summary(f, last_n)
    assert got == res.summary_from_row(row)
    newest = set(_wanted(f)[:last_n])
    spans = [s for s in _spans() if (s.trace_id, s.span_id) in newest]
    assert got.count == len(spans)
    assert got.input_tokens == sum(s.input_tokens or 0 for s in spans)
    assert got.errors == sum(s.outcome == "error" for s in spans)
