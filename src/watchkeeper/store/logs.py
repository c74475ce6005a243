"""The log store on DuckDB: narrow columns to filter on, bodies searched through a token
filter per block instead of read whole.

Its own database file (`<data_dir>/logs.duckdb`), as the metric store has, for the same
reasons (its writer never waits on the span writer's lock or checkpoints); DuckDB compresses
the text columns itself (dictionary and FSST).

**Text search.** Each write appends its records as one block per project and records, in
`log_blocks`, the block's time range and a Bloom filter of the words of its bodies: 16,384
bits in 256 UBIGINT columns, 3 bits per word. A search for words or phrases first keeps
the blocks whose filter has every bit of every word (a handful of columns of a table a few
hundred times smaller than the logs: DuckDB reads only the columns a query names), then
matches the bodies of those blocks only. A word matches whole words, case-insensitively;
a phrase, its words in that order with only non-word characters between them.

**Re-delivery.** A record's `log_id` is a digest of what it says: a record written twice
(a spool replay after a crash, an exporter's retry) is stored once.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from watchkeeper.errors import StoreError, ValidationError
from watchkeeper.model import LogRow
from watchkeeper.store import _duckdb_schema

WORDS = 256  # UBIGINT columns of a block's filter
BITS = WORDS * 64
HASHES = 3  # bits per word
_WORD = re.compile(r"\w+")
_QUERY = re.compile(r'"([^"]*)"|(\S+)')
_COLUMNS = tuple(f.name for f in fields(LogRow))
_INT = {"time_ns", "observed_ns", "severity_number"}
MAX_PAGE = 1000

_BLOOM_COLUMNS = ", ".join(f"b{i} UBIGINT NOT NULL" for i in range(WORDS))
MIGRATIONS: _duckdb_schema.Migrations = (
    (
        1,
        "log records in blocks, and each block's time range and word filter",
        (
            "CREATE TABLE logs (block BIGINT NOT NULL, "
            + ", ".join(f"{n} {'BIGINT' if n in _INT else 'VARCHAR'} NOT NULL" for n in _COLUMNS)
            + ")",
            "CREATE TABLE log_blocks (block BIGINT PRIMARY KEY, project VARCHAR NOT NULL, "
            f"min_ns BIGINT NOT NULL, max_ns BIGINT NOT NULL, records INTEGER NOT NULL, "
            f"{_BLOOM_COLUMNS})",
        ),
    ),
)


def words(text: str) -> list[str]:
    """The words of a text as the filter and the search see them (lowercase)."""
    return _WORD.findall(text.lower())


def bit_positions(word: str) -> tuple[int, ...]:
    """The filter bits of a word (two stable hashes, combined: Kirsch-Mitzenmacher)."""
    data = word.encode()
    h1, h2 = zlib.crc32(data), zlib.adler32(data) | 1
    return tuple((h1 + i * h2) % BITS for i in range(HASHES))


def bloom(texts: Sequence[str]) -> list[int]:
    """The filter of these texts: `WORDS` 64-bit words."""
    out = [0] * WORDS
    for word in {w for t in texts for w in words(t)}:
        for bit in bit_positions(word):
            out[bit >> 6] |= 1 << (bit & 63)
    return out


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
        """One RE2 pattern per part, for the bodies the filter lets through."""
        edge_l, edge_r, gap = r"(^|[^\pL\pN_])", r"([^\pL\pN_]|$)", r"[^\pL\pN_]+"
        return [
            "(?i)" + edge_l + gap.join(re.escape(w) for w in part) + edge_r for part in self.parts
        ]

    def masks(self) -> dict[int, int]:
        """Filter column -> the bits every block that may match has set."""
        out: dict[int, int] = {}
        for part in self.parts:
            for w in part:
                for bit in bit_positions(w):
                    out[bit >> 6] = out.get(bit >> 6, 0) | 1 << (bit & 63)
        return out


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


class LogStore:
    """Log records in one DuckDB file; `path=None` keeps them in memory."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        memory_limit_mb: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._clock = clock
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(":memory:" if path is None else str(path))
            _duckdb_schema.migrate(self._con, steps=MIGRATIONS)
            if memory_limit_mb is not None:
                self._con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
            ((last,),) = self._con.execute(
                "SELECT coalesce(max(block), 0) FROM log_blocks"
            ).fetchall()
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"cannot open log store {path}: {exc}") from exc
        self._next_block = int(last) + 1
        self._lock = threading.Lock()  # one write at a time
        self._cursor_lock = threading.Lock()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._cursor_lock:  # one per call: a DuckDB connection is not shared by threads
            cur = self._con.cursor()
        try:
            yield cur
        except duckdb.Error as exc:
            raise StoreError(f"log store: {exc}") from exc
        finally:
            cur.close()

    def close(self) -> None:
        """Checkpoint and close the file."""
        with self._lock:
            self._con.close()

    # --- writes -----------------------------------------------------------------------------

    def write(self, rows: Sequence[LogRow]) -> int:
        """Store the records not stored yet (by `log_id`); return how many were new."""
        by_project: dict[str, dict[str, LogRow]] = {}
        for r in rows:  # the first of each id, in order
            by_project.setdefault(r.project, {}).setdefault(r.log_id, r)
        written = 0
        with self._lock, self._cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                for project, unique in by_project.items():
                    written += self._write_block(cur, project, list(unique.values()))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return written

    def _write_block(self, cur: Any, project: str, rows: list[LogRow]) -> int:
        lo = min(r.time_ns for r in rows)
        hi = max(r.time_ns for r in rows)
        cur.register("wk_ids", pa.table({"log_id": [r.log_id for r in rows]}))
        stored = cur.execute(
            "SELECT l.log_id FROM logs l SEMI JOIN wk_ids i ON l.log_id = i.log_id "
            "WHERE l.project = $p AND l.time_ns BETWEEN $lo AND $hi",
            {"p": project, "lo": lo, "hi": hi},
        ).fetchall()
        cur.unregister("wk_ids")
        if stored:
            old = {i for (i,) in stored}
            rows = [r for r in rows if r.log_id not in old]
            if not rows:
                return 0
            lo, hi = min(r.time_ns for r in rows), max(r.time_ns for r in rows)
        block = self._next_block
        values = list(zip(*map(astuple, rows), strict=True))
        table = pa.table(
            {"block": pa.array([block] * len(rows), pa.int64())}
            | {
                n: pa.array(v, pa.int64() if n in _INT else pa.string())
                for n, v in zip(_COLUMNS, values, strict=True)
            }
        )
        cur.register("wk_logs", table)
        cur.execute("INSERT INTO logs SELECT * FROM wk_logs")
        cur.unregister("wk_logs")
        filt = bloom([r.body for r in rows])
        cur.execute(
            f"INSERT INTO log_blocks VALUES ($b, $p, $lo, $hi, $n, "
            f"{', '.join(f'$w{i}' for i in range(WORDS))})",
            {"b": block, "p": project, "lo": lo, "hi": hi, "n": len(rows)}
            | {f"w{i}": w for i, w in enumerate(filt)},
        )  # fmt: skip
        self._next_block += 1
        return len(rows)

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """Drop records older than `before_ns` (of one project, or all); return how many."""
        where = "time_ns < $t" + ("" if project is None else " AND project = $p")
        params: dict[str, Any] = {"t": before_ns} | ({} if project is None else {"p": project})
        with self._lock, self._cursor() as cur:
            ((n,),) = cur.execute(f"SELECT count(*) FROM logs WHERE {where}", params).fetchall()
            cur.execute(f"DELETE FROM logs WHERE {where}", params)
            blocks = "max_ns < $t" + ("" if project is None else " AND project = $p")
            cur.execute(f"DELETE FROM log_blocks WHERE {blocks}", params)
        return int(n)

    # --- reads ------------------------------------------------------------------------------

    def _where(self, f: LogFilter, params: dict[str, Any]) -> str:
        params |= {"p": f.project, "lo": f.start_ns, "hi": f.end_ns}
        where = ["project = $p", "time_ns >= $lo", "time_ns < $hi"]
        if f.services:
            params["services"] = list(f.services)
            where.append("list_contains($services, service)")
        if f.min_severity:
            params["sev"] = f.min_severity
            where.append("severity_number >= $sev")
        if f.trace_id:
            params["trace"] = f.trace_id
            where.append("trace_id = $trace")
        if f.span_id:
            params["span"] = f.span_id
            where.append("span_id = $span")
        for i, (key, value) in enumerate(f.attributes):
            params[f"ak{i}"], params[f"av{i}"] = f"$.{_json_key(key)}", value
            where.append(f"json_extract_string(attributes, $ak{i}) = $av{i}")
        if f.text is not None:
            where.append(f"block IN ({self._blocks_sql(f, params)})")
            for i, pattern in enumerate(f.text.regexes()):
                params[f"re{i}"] = pattern
                where.append(f"regexp_matches(body, $re{i})")
        return " AND ".join(where)

    @staticmethod
    def _blocks_sql(f: LogFilter, params: dict[str, Any]) -> str:
        assert f.text is not None
        checks = []
        for col, mask in sorted(f.text.masks().items()):
            params[f"m{col}"] = mask
            checks.append(f"(b{col} & $m{col}::UBIGINT) = $m{col}::UBIGINT")
        return (
            "SELECT block FROM log_blocks WHERE project = $p AND max_ns >= $lo "
            f"AND min_ns < $hi AND {' AND '.join(checks)}"
        )

    def search(self, f: LogFilter, limit: int = 100, cursor: str | None = None) -> LogPage:
        """Records newest first, `limit` at most, from after `cursor` (a page's last)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be within 1..{MAX_PAGE}")
        params: dict[str, Any] = {}
        with self._cursor() as cur:
            where = self._where(f, params)
            if cursor is not None:
                t, log_id = _parse_cursor(cursor)
                params |= {"ct": t, "cid": log_id}
                where += " AND (time_ns < $ct OR (time_ns = $ct AND log_id < $cid))"
            params["limit"] = limit + 1
            rows = cur.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM logs WHERE {where} "
                "ORDER BY time_ns DESC, log_id DESC LIMIT $limit",
                params,
            ).fetchall()
        records = [LogRow(*r) for r in rows[:limit]]
        more = len(rows) > limit
        last = records[-1] if records else None
        return LogPage(records, f"{last.time_ns}-{last.log_id}" if more and last else None)

    def histogram(self, f: LogFilter, step_ns: int) -> list[tuple[int, int, int]]:
        """(bucket start, severity number's range start, count) of the records, by bucket
        (buckets without records are left out, so their number is bounded by the records;
        `step_for` keeps a range to a readable number of them)."""
        if step_ns <= 0:
            raise ValidationError("the histogram's step must be positive")
        params: dict[str, Any] = {"step": step_ns}
        with self._cursor() as cur:
            where = self._where(f, params)
            rows = cur.execute(
                "SELECT time_ns // $step * $step AS t, "
                "CASE WHEN severity_number = 0 THEN 0 ELSE (severity_number - 1) // 4 * 4 + 1 END "
                f"AS sev, count(*) FROM logs WHERE {where} GROUP BY ALL ORDER BY t, sev",
                params,
            ).fetchall()
        return [(int(t), int(s), int(n)) for t, s, n in rows]

    def count_matching(self, f: LogFilter) -> int:
        """The number of records `f` matches (what log alert rules count)."""
        params: dict[str, Any] = {}
        with self._cursor() as cur:
            where = self._where(f, params)
            ((n,),) = cur.execute(f"SELECT count(*) FROM logs WHERE {where}", params).fetchall()
        return int(n)

    def count(self, project: str | None = None) -> int:
        """Records stored (of one project, or all)."""
        with self._cursor() as cur:
            if project is None:
                ((n,),) = cur.execute("SELECT count(*) FROM logs").fetchall()
            else:
                ((n,),) = cur.execute(
                    "SELECT count(*) FROM logs WHERE project = $p", {"p": project}
                ).fetchall()
        return int(n)


def step_for(start_ns: int, end_ns: int, step_ns: int, most: int = 1_000) -> int:
    """`step_ns`, or the smallest multiple of a second over it that gives at most `most`
    buckets between start and end."""
    span = max(end_ns - start_ns, 1)
    if span // step_ns <= most:
        return step_ns
    second = 1_000_000_000
    return -(-span // (most * second)) * second


def _json_key(key: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,200}", key):
        raise ValidationError(f"attribute name {key!r:.60} is not one we can match")
    return '"' + key + '"'


def _parse_cursor(cursor: str) -> tuple[int, str]:
    t, _, log_id = cursor.partition("-")
    if not (t.isdigit() and len(t) <= 19 and re.fullmatch(r"[0-9a-f]{16}", log_id)):
        raise ValidationError("cursor is not one this API gave")
    return int(t), log_id
