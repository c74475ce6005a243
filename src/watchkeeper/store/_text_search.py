"""Text search over the spans' payloads, written once for every SQL engine: candidates read
newest first in time windows below a cursor, their text matched here (`TextSearch`),
and the width of those windows (`window_width`, which the newest-first reads of `_sql` use too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import zstandard

from watchkeeper.model import SpanRow
from watchkeeper.store import _render as r
from watchkeeper.store import _results as res
from watchkeeper.store import _rollup as ru
from watchkeeper.store._dialect import Dialect
from watchkeeper.store._payload import matches
from watchkeeper.store._protocol import Page, SpanFilter

TEXT_CHUNK = 1_000  # candidates the first round of a text search examines
TEXT_GROWTH = 4  # each next round examines this many times more (up to the budget)
TEXT_BUDGET = 20_000  # candidates one text-search call examines at most before it pages

#: A text-search candidate of one project: (start_ns, span_id, trace_id).
Key = tuple[int, str, str]


def window_width(covered: int, seen: int, want: int, last: int) -> int:
    """The width (ns) of a text search's next time window: twice what holds `want` spans
    at the rate seen so far (`seen` spans over `covered` ns), and at least 4 times the
    `last` window when that one held too few (8 times when none was seen yet)."""
    if not seen:
        return 8 * max(last, 1)
    return max(2 * want * max(covered, 1) // seen, 4 * last, 1)


def window_start(f: SpanFilter, top: int | None, width: int) -> int | None:
    """Where the window of `width` below `top` starts; None when the filter's own start
    (or no `top`) bounds it."""
    if top is None or top - width <= (f.start_ns if f.start_ns is not None else -(2**63)):
        return None
    return top - width


class TextSearch:
    """Text search on one engine: `rows` runs a rendered query (the store's executor)."""

    def __init__(
        self,
        rows: Callable[[r.Query], list[tuple[Any, ...]]],
        dialect: Dialect,
        chunk: int = TEXT_CHUNK,
        budget: int = TEXT_BUDGET,
    ) -> None:
        self._rows = rows
        self.dialect = dialect
        self._text_chunk = chunk
        self._text_budget = budget

    def page(self, f: SpanFilter, limit: int, after: tuple[int, str] | None) -> Page:
        """Spans whose payload text holds `f.text` (any case), newest first, examining at
        most `text_budget` candidates (then a cursor for the rest).

        In rounds of `text_chunk` candidates, each TEXT_GROWTH times the last: a common
        needle answers from the first, a needle found nowhere takes a few. Each round
        reads a time window below the last candidate (the first: the hour below the
        cursor, or the newest hour of the project's spans), the next sized from the rate
        seen so far, so the engine reads the spans and payloads of that window, not every
        older one (an unbounded newest-first read of 10M spans took 100 ms on ClickHouse,
        an hour of them 8 ms); a window that holds too few is followed by a wider one.
        A round fetches the candidates' keys, then their text by a semi-join
        (no list of ids travels), matched here; whole rows only of the spans found.
        """
        needle = (f.text or "").lower()
        dz = zstandard.ZstdDecompressor()
        found: list[Key] = []
        scanned, size, width = 0, self._text_chunk, ru.HOUR_NS
        top = after[0] if after is not None else self._newest_start(f)  # the search's top
        since = window_start(f, top, width)  # the round's window starts here
        while True:
            n = min(size, self._text_budget - scanned)
            q = r.search_query(f, self.dialect, n, after, since=since, columns=r.KEY_COLUMNS)
            keys: list[Key] = self._rows(q)  # as the engine gives them: no conversion
            texts = self._candidate_texts(f, after, keys)
            short = len(keys) < n  # the window (or, without one, the spans) ran out
            for i, key in enumerate(keys):
                if matches(texts.get(key[1:]), needle, dz):
                    found.append(key)
                    if len(found) == limit:
                        last = short and since is None and i == len(keys) - 1
                        return self._found_page(f.project, found, None if last else key)
            scanned += len(keys)
            if short and since is None:
                return self._found_page(f.project, found, None)
            if scanned >= self._text_budget:  # bound the work: the client asks for more
                return self._found_page(f.project, found, keys[-1])
            # below the last candidate, or below the window that ran out
            after = (since, "") if short and since is not None else (keys[-1][0], keys[-1][1])
            top = keys[0][0] if top is None else top
            size *= TEXT_GROWTH
            want = min(size, self._text_budget - scanned)
            width = window_width(top - after[0], scanned, want, width if short else 0)
            since = window_start(f, after[0], width)

    def _newest_start(self, f: SpanFilter) -> int | None:
        """Above every span of the filter: the end of the newest hour of the project's
        spans (the hourly totals), or the filter's end if sooner; None when the rollup
        holds none (the first round then reads without a window)."""
        (hour,) = self._rows(r.newest_hour_query(f.project, self.dialect))[0]
        if hour is None:
            return None
        end = int(hour) + ru.HOUR_NS
        return end if f.end_ns is None else min(end, f.end_ns)

    def _candidate_texts(
        self, f: SpanFilter, after: tuple[int, str] | None, keys: Sequence[Key]
    ) -> dict[tuple[str, str], bytes | None]:
        """The text blobs of these candidates (newest first) by (span_id, trace_id)."""
        if not keys:
            return {}
        q = r.candidate_io_query(f, self.dialect, after, keys[-1][:2], keys[0][0])
        return {(sid, tid): io for sid, tid, io in self._rows(q)}

    def _found_page(self, project: str, found: Sequence[Key], cursor: Key | None) -> Page:
        """The page of the spans found (whole rows, in the order found)."""
        items: list[SpanRow] = []
        if found:
            q = r.spans_by_key_query(project, found, self.dialect)
            rows = {(s.span_id, s.trace_id): s for s in map(res.span_from_row, self._rows(q))}
            items = [rows[k[1:]] for k in found if k[1:] in rows]
        return Page(items, res.encode_cursor(cursor[0], cursor[1]) if cursor else None)
