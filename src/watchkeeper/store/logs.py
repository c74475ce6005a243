"""The log store: what a log query means, written once for every engine.

A filter becomes one WHERE clause (`SqlLogStore._where`); pages go newest first by a
(time, id) cursor; the histogram counts by severity range; `services` counts by service.
An engine module holds only what differs: the connection, the DDL, the bulk insert, the
text access path and a few spellings — `duckdb_logs.DuckDBLogStore` (its own file, a
Bloom filter per written block) and `clickhouse_logs.ClickHouseLogStore` (the span
store's ClickHouse, a `text` index on the bodies). The API, the alert kinds and retention
use the `LogStore` protocol and never know which engine answers.

**Text search** is the same on both: a word matches whole words, case-insensitively; a
phrase, its words in that order with only non-word characters between them. The engine's
access path (the block filter, the index) only narrows which bodies are read; the match
itself is one RE2 pattern per word or phrase (`Terms.regexes`), on both engines.

**Re-delivery.** A record's `log_id` is a digest of what it says: a record written twice
(a spool replay after a crash, an exporter's retry) is stored once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from watchkeeper.errors import ValidationError
from watchkeeper.model import LogRow
from watchkeeper.store._dialect import Dialect, Params

_WORD = re.compile(r"\w+")
_QUERY = re.compile(r'"([^"]*)"|(\S+)')
#: The columns of a log record, in `LogRow`'s order (every engine's table has them).
COLUMNS = tuple(f.name for f in fields(LogRow))
MAX_PAGE = 1000
_INTS = frozenset({"time_ns", "observed_ns", "severity_number"})


def log_table(values: Mapping[str, Sequence[Any]]) -> pa.Table:
    """Records' values by column (every one of `COLUMNS`) as the Arrow table a write takes:
    64-bit integers for the times and the severity, strings for the rest."""
    return pa.table(
        {n: pa.array(values[n], pa.int64() if n in _INTS else pa.string()) for n in COLUMNS}
    )


def packed_table(
    count: int, packed: Mapping[str, tuple[bytes, bytes]], ints: frozenset[str]
) -> pa.Table:
    """`count` records' columns given as Arrow's buffers (`ingest._logs_decode.pack`: int64
    values for the columns in `ints`, int32 offsets and UTF-8 bytes for the others) as a
    `log_table`, over those bytes."""
    arrays = []
    for name in COLUMNS:
        first, second = packed[name]
        if name in ints:
            arrays.append(pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(first)]))
        else:
            buffers = [None, pa.py_buffer(first), pa.py_buffer(second)]
            arrays.append(pa.Array.from_buffers(pa.string(), count, buffers))
    return pa.table(dict(zip(COLUMNS, arrays, strict=True)))


def rows_of(table: pa.Table) -> list[LogRow]:
    """The records of a `log_table` as rows."""
    return [LogRow(*r) for r in zip(*(table[n].to_pylist() for n in COLUMNS), strict=True)]


def columns(rows: Sequence[LogRow]) -> dict[str, list[Any]]:
    """The records column by column, in `COLUMNS` order (an insert's Arrow table).

    Read attribute by attribute: `dataclasses.astuple` deep-copies every field and took
    260 µs of the 400 µs a DuckDB write spent per record (`python -m bench.logs`).
    """
    return {name: [getattr(r, name) for r in rows] for name in COLUMNS}


def words(text: str) -> list[str]:
    """The words of a text as the filter and the search see them (lowercase)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Terms:
    """A search text: the words and phrases every record found must hold."""

    parts: tuple[tuple[str, ...], ...]  # each a word (1) or a phrase (several)

    @classmethod
    def parse(cls, text: str) -> Terms:
        """Words, and phrases in double quotes (punctuation only separates words);
        `ValidationError` when the text has no word at all."""
        parts = []
        for phrase, word in _QUERY.findall(text):
            found = tuple(words(phrase or word))
            if found:
                parts.append(found)
        if not parts:
            raise ValidationError(f"search text {text[:60]!r} has no word in it")
        return cls(tuple(parts))

    def regexes(self) -> list[str]:
        """One RE2 pattern per part, for the bodies the access path lets through."""
        edge_l, edge_r, gap = r"(^|[^\pL\pN_])", r"([^\pL\pN_]|$)", r"[^\pL\pN_]+"
        return [
            "(?i)" + edge_l + gap.join(re.escape(w) for w in part) + edge_r for part in self.parts
        ]

    def all_words(self) -> list[str]:
        """Every word of every part, once each, in order."""
        return list(dict.fromkeys(w for part in self.parts for w in part))


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which records: a project and time range, then any of the narrower conditions."""

    project: str
    start_ns: int
    end_ns: int
    services: tuple[str, ...] = ()
    min_severity: int = 0  # 0: any
    text: Terms | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # attribute equality, all of them
    trace_id: str = ""
    span_id: str = ""


@dataclass(frozen=True, slots=True)
class LogPage:
    """Records newest first, and the cursor of the next page (None at the end)."""

    records: list[LogRow]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class ServiceCount:
    """A service that sent records, and how many of them a filter matched."""

    service: str
    records: int


class LogStore(Protocol):
    """What the API, the alert kinds and retention ask of a log store (any engine)."""

    def write(self, rows: Sequence[LogRow]) -> int:
        """Store the records not stored yet (by `log_id`); return how many were new."""
        ...

    def write_table(self, table: pa.Table) -> int:
        """`write` of records given as a `log_table` (what the ingest path decodes)."""
        ...

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """Drop records older than `before_ns` (of one project, or all); return how many."""
        ...

    def search(self, f: LogFilter, limit: int = 100, cursor: str | None = None) -> LogPage:
        """Records newest first, `limit` at most, from after `cursor` (a page's last)."""
        ...

    def histogram(self, f: LogFilter, step_ns: int) -> list[tuple[int, int, int]]:
        """(bucket start, severity range start, count), by bucket then severity."""
        ...

    def services(self, f: LogFilter) -> list[ServiceCount]:
        """The services with records `f` matches, most records first."""
        ...

    def count_matching(self, f: LogFilter) -> int:
        """The number of records `f` matches."""
        ...

    def count(self, project: str | None = None) -> int:
        """Records stored (of one project, or all)."""
        ...

    def close(self) -> None:
        """Release the engine."""
        ...


class SqlLogStore:
    """Every log read, rendered once; an engine subclass supplies `_rows` (run a query),
    `_text_where` (its text access path) and the spellings of a regex match and of an
    attribute's value."""

    dialect: ClassVar[Dialect]

    def write(self, rows: Sequence[LogRow]) -> int:
        """Store the records not stored yet (by `log_id`); return how many were new."""
        raise NotImplementedError

    def write_table(self, table: pa.Table) -> int:
        """`write` of records given as a `log_table` (an engine may insert it as it is)."""
        return self.write(rows_of(table))

    def _rows(self, sql: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _text_where(self, f: LogFilter, p: Params) -> list[str]:
        """Conditions that narrow the bodies to match to those that may hold the words."""
        raise NotImplementedError

    def _regex(self, column: str, pattern: str) -> str:
        raise NotImplementedError

    def _attribute_is(self, key: str, value: str, p: Params) -> str:
        """Attribute `key` (a checked name) holds `value` (a string as it is, any other
        JSON value as its JSON text)."""
        raise NotImplementedError

    def _where(self, f: LogFilter, p: Params) -> str:
        d = self.dialect
        where = [f"project = {p(f.project)}", f"time_ns >= {p(f.start_ns)}",
                 f"time_ns < {p(f.end_ns)}"]  # fmt: skip
        if f.services:
            where.append(d.contains(p(list(f.services)), "service"))
        if f.min_severity:
            where.append(f"severity_number >= {p(f.min_severity)}")
        if f.trace_id:
            where.append(f"trace_id = {p(f.trace_id)}")
        if f.span_id:
            where.append(f"span_id = {p(f.span_id)}")
        for key, value in f.attributes:
            where.append(self._attribute_is(_checked_key(key), value, p))
        if f.text is not None:
            where += self._text_where(f, p)
            where += [self._regex("body", p(pattern)) for pattern in f.text.regexes()]
        return " AND ".join(where)

    def search(self, f: LogFilter, limit: int = 100, cursor: str | None = None) -> LogPage:
        """Records newest first, `limit` at most, from after `cursor` (a page's last)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be within 1..{MAX_PAGE}")
        p = Params(self.dialect)
        where = self._where(f, p)
        if cursor is not None:
            t, log_id = _parse_cursor(cursor)
            ct, cid = p(t), p(log_id)
            where += f" AND (time_ns < {ct} OR (time_ns = {ct} AND log_id < {cid}))"
        rows = self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM logs WHERE {where} "
            f"ORDER BY time_ns DESC, log_id DESC LIMIT {int(limit) + 1}",
            p.values,
        )
        records = [LogRow(*r) for r in rows[:limit]]
        last = records[-1] if records else None
        more = len(rows) > limit
        return LogPage(records, f"{last.time_ns}-{last.log_id}" if more and last else None)

    def histogram(self, f: LogFilter, step_ns: int) -> list[tuple[int, int, int]]:
        """(bucket start, severity number's range start, count) of the records, by bucket
        (buckets without records are left out, so their number is bounded by the records;
        `step_for` keeps a range to a readable number of them)."""
        if step_ns <= 0:
            raise ValidationError("the histogram's step must be positive")
        d, p = self.dialect, Params(self.dialect)
        where = self._where(f, p)
        step = p(int(step_ns))
        sev = d.int_div("(severity_number - 1)", "4")
        sev = f"CASE WHEN severity_number = 0 THEN 0 ELSE {sev} * 4 + 1 END"
        rows = self._rows(
            f"SELECT {d.int_div('time_ns', step)} * {step} AS t, {sev} AS sev, count(*) "
            f"FROM logs WHERE {where} GROUP BY t, sev ORDER BY t, sev",
            p.values,
        )
        return [(int(t), int(s), int(n)) for t, s, n in rows]

    def services(self, f: LogFilter) -> list[ServiceCount]:
        """The services with records `f` matches, most records first (then by name)."""
        p = Params(self.dialect)
        where = self._where(f, p)
        rows = self._rows(
            f"SELECT service, count(*) AS n FROM logs WHERE {where} "
            "GROUP BY service ORDER BY n DESC, service",
            p.values,
        )
        return [ServiceCount(str(s), int(n)) for s, n in rows]

    def count_matching(self, f: LogFilter) -> int:
        """The number of records `f` matches (what log alert rules count)."""
        p = Params(self.dialect)
        ((n,),) = self._rows(f"SELECT count(*) FROM logs WHERE {self._where(f, p)}", p.values)
        return int(n)

    def count(self, project: str | None = None) -> int:
        """Records stored (of one project, or all)."""
        p = Params(self.dialect)
        where = "" if project is None else f" WHERE project = {p(project)}"
        ((n,),) = self._rows(f"SELECT count(*) FROM logs{where}", p.values)
        return int(n)


def step_for(start_ns: int, end_ns: int, step_ns: int, most: int = 1_000) -> int:
    """`step_ns`, or the smallest multiple of a second over it that gives at most `most`
    buckets between start and end."""
    span = max(end_ns - start_ns, 1)
    if span // step_ns <= most:
        return step_ns
    second = 1_000_000_000
    return -(-span // (most * second)) * second


def _checked_key(key: str) -> str:
    """An attribute name we can put in a JSON path (it is also bound, never pasted)."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,200}", key):
        raise ValidationError(f"attribute name {key!r:.60} is not one we can match")
    return key


def _parse_cursor(cursor: str) -> tuple[int, str]:
    t, _, log_id = cursor.partition("-")
    if not (t.isdigit() and len(t) <= 19 and re.fullmatch(r"[0-9a-f]{16}", log_id)):
        raise ValidationError("cursor is not one this API gave")
    return int(t), log_id
