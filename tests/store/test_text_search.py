"""Text search over payloads, on every engine: rounds that grow, time windows that widen over
gaps in the data, pages and budgets, and needles that mean something to SQL (matched
literally, in any case)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.conftest import open_store
from watchkeeper.model import PayloadRow, SpanBatch, SpanRow
from watchkeeper.store import SpanFilter
from watchkeeper.store._sql import SqlStore
from watchkeeper.store._text_search import window_width

#: Reasons a test here runs once (`conftest`).
DUCKDB_ONLY = {"test_window_width": "A pure function: no engine runs it"}
SECOND = 10**9
DAY = 86_400 * SECOND
T0 = 1_700_000_000 * SECOND
#: Groups of spans far apart in time (a busy minute, a quiet day, years before): the
#: windows a search reads must widen over the gaps and never skip a span.
GROUPS = ((T0, 60, SECOND // 10), (T0 - DAY, 45, 600 * SECOND), (T0 - 900 * DAY, 40, SECOND))
TEXTS = (
    "the Zebra crossing",  # any case
    "100% sure",
    "a_b c",
    "it's here",
    "C:\\temp\\x",
    "naïve ÜBER café",
    'say "hi"\nthen\tgo',
    "\u212aELVIN scale",  # a Kelvin sign: lower-cased, an ASCII "k"
)


def _spans() -> tuple[list[SpanRow], list[PayloadRow]]:
    """Spans of GROUPS (two of every three with a payload, TEXTS among them); span ids
    repeat across traces, as some tracers number their spans."""
    spans, payloads = [], []
    for g, (end, n, step) in enumerate(GROUPS):
        for i in range(n):
            start = end - i // 2 * step  # two spans of each start: the keyset breaks ties
            span = SpanRow("demo", f"{g:02x}{i:030x}", f"{i % 25:016x}", "", "op", start, 5)
            spans.append(span)
            if i % 3:
                text = TEXTS[(g + i // 4) % len(TEXTS)] if i % 4 == 1 else f"plain {i}"
                payloads.append(PayloadRow("demo", span.trace_id, span.span_id, start,
                                           input=text, output="done"))  # fmt: skip
    other = SpanRow("other", "f" * 32, "f" * 16, "", "op", T0, 5)
    return [*spans, other], [*payloads, PayloadRow("other", other.trace_id, other.span_id,
                                                   T0, input="100% zebra")]  # fmt: skip


@pytest.fixture(scope="module")
def stores(engine: str) -> Iterator[dict[str, SqlStore]]:
    """The same spans in stores that examine few candidates per round and per call, and
    one with the defaults."""
    spans, payloads = _spans()
    made = {
        "small": open_store(engine, text_chunk=3, text_budget=29),
        "one round": open_store(engine, text_chunk=50, text_budget=50),
        "defaults": open_store(engine),
    }
    for store in made.values():
        store.write(SpanBatch(spans, list(payloads)))
    yield made
    for store in made.values():
        store.close()


def _pages(store: SqlStore, f: SpanFilter, limit: int) -> list[list[SpanRow]]:
    pages, cursor = [], None
    while True:
        page = store.search_spans(f, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _wanted(needle: str, project: str = "demo") -> list[tuple[str, str]]:
    spans, payloads = _spans()
    texts = {(p.trace_id, p.span_id): f"{p.input}\n{p.output}" for p in payloads}
    hits = [
        s for s in spans
        if s.project == project and needle.lower() in texts.get((s.trace_id, s.span_id), "").lower()
    ]  # fmt: skip
    hits.sort(key=lambda s: (s.start_ns, s.span_id), reverse=True)
    return [(s.trace_id, s.span_id) for s in hits]


NEEDLES = ["ZEBRA", "100%", "a_b", "it's", "\\temp\\", "ÜBER CAFÉ", '"hi"\nthen', "plain 1",
           "%", "_", "'", "kelvin s"]  # fmt: skip


@pytest.mark.parametrize("kind", ["small", "one round", "defaults"])
@pytest.mark.parametrize("needle", NEEDLES)
def test_every_match_once_newest_first_in_any_case(
    stores: dict[str, SqlStore], kind: str, needle: str
) -> None:
    pages = _pages(stores[kind], SpanFilter("demo", text=needle), 2)
    got = [(s.trace_id, s.span_id) for page in pages for s in page]
    assert got == _wanted(needle) and got


@pytest.mark.parametrize("needle", ["100x", "a-b", "its", "c:/temp", "naive", "zebra%"])
def test_metacharacters_are_literal(stores: dict[str, SqlStore], needle: str) -> None:
    """`%`, `_` and `\\` are no wildcards or escapes: a needle is found only as written."""
    for store in stores.values():
        assert not any(_pages(store, SpanFilter("demo", text=needle), 5))


def test_a_call_examines_at_most_its_budget(stores: dict[str, SqlStore]) -> None:
    """A needle found nowhere: each call examines `text_budget` spans, then hands a cursor
    for the next ones, down to the oldest span (across the gaps)."""
    demo = len(_spans()[0]) - 1
    pages = _pages(stores["small"], SpanFilter("demo", text="no such words"), 5)
    assert pages == [[]] * (demo // 29 + 1)  # 145 spans, 29 a call; the 6th finds the end
    assert _pages(stores["defaults"], SpanFilter("demo", text="no such words"), 5) == [[]]


def test_a_search_keeps_to_its_project_and_time_range(stores: dict[str, SqlStore]) -> None:
    for store in stores.values():
        assert _pages(store, SpanFilter("other", text="ZEBRA"), 5) == [[
            s for s in _spans()[0] if s.project == "other"
        ]]  # fmt: skip
        f = SpanFilter("demo", start_ns=T0 - 2 * DAY, end_ns=T0 - 3 * SECOND, text="100%")
        got = [s for page in _pages(store, f, 1) for s in page]
        spans = {(s.trace_id, s.span_id): s for s in _spans()[0]}
        want = [k for k in _wanted("100%") if T0 - 2 * DAY <= spans[k].start_ns < T0 - 3 * SECOND]
        assert [(s.trace_id, s.span_id) for s in got] == want and want


@pytest.mark.parametrize(
    ("covered", "seen", "want", "last", "width"),
    [
        (1_000, 10, 40, 0, 8_000),  # twice the span of 40 at the rate seen
        (1_000, 10, 40, 5_000, 20_000),  # the last window held too few: 4 times wider
        (0, 10, 40, 0, 8),  # every span seen at one instant: a window all the same
        (10**18, 1, 10**6, 0, 2 * 10**24),  # past any time: the filter's own start bounds it
        (3_600, 0, 40, 3_600, 28_800),  # nothing seen yet: 8 times wider
    ],
)
def test_window_width(covered: int, seen: int, want: int, last: int, width: int) -> None:
    assert window_width(covered, seen, want, last) == width
