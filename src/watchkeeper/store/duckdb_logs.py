"""The log store on DuckDB: narrow columns to filter on, bodies searched through a token
filter per block instead of read whole (the reads are `logs.SqlLogStore`'s).

Its own database file (`<data_dir>/logs.duckdb`), as the metric store has, for the same
reasons (its writer never waits on the span writer's lock or checkpoints); DuckDB compresses
the text columns itself (dictionary and FSST).

**Text access path.** Each write appends its records in blocks (per project, at most
`BLOCK_RECORDS`) and records, in `log_blocks`, the block's time range and a Bloom filter
of the words of its bodies: 16,384 bits in 256 UBIGINT columns, 3 bits per word. A search
for words or phrases first keeps the blocks whose filter has every bit of every word (a
handful of columns of a table a few hundred times smaller than the logs: DuckDB reads only
the columns a query names), then matches the bodies of those blocks only.

**Re-delivery.** Before a block is written, the ids of its records already stored (in the
batch's time range) are left out, under the one writer lock.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from watchkeeper.errors import StoreError
from watchkeeper.model import LogRow
from watchkeeper.store import _duckdb_schema
from watchkeeper.store._dialect import DUCKDB, Params
from watchkeeper.store.logs import COLUMNS, LogFilter, SqlLogStore, Terms, columns, words

WORDS = 256  # UBIGINT columns of a block's filter
BITS = WORDS * 64
HASHES = 3  # bits per word
#: Records per block at most: ~25 distinct words a record (an id among them) set about a
#: third of a filter's bits at 512 (a false positive 1 word in 30); a write of more records
#: makes several blocks (`python -m bench.logs`).
BLOCK_RECORDS = 512
_INT = {"time_ns", "observed_ns", "severity_number"}

_BLOOM_COLUMNS = ", ".join(f"b{i} UBIGINT NOT NULL" for i in range(WORDS))
MIGRATIONS: _duckdb_schema.Migrations = (
    (
        1,
        "log records in blocks, and each block's time range and word filter",
        (
            "CREATE TABLE logs (block BIGINT NOT NULL, "
            + ", ".join(f"{n} {'BIGINT' if n in _INT else 'VARCHAR'} NOT NULL" for n in COLUMNS)
            + ")",
            "CREATE TABLE log_blocks (block BIGINT PRIMARY KEY, project VARCHAR NOT NULL, "
            f"min_ns BIGINT NOT NULL, max_ns BIGINT NOT NULL, records INTEGER NOT NULL, "
            f"{_BLOOM_COLUMNS})",
        ),
    ),
)


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


def _filters(project: str, first: int, chunks: list[list[LogRow]]) -> pa.Table:
    """The `log_blocks` rows of blocks `first`, `first + 1`... holding `chunks`."""
    filters = [bloom([r.body for r in chunk]) for chunk in chunks]
    return pa.table(
        {
            "block": pa.array(range(first, first + len(chunks)), pa.int64()),
            "project": pa.array([project] * len(chunks), pa.string()),
            "min_ns": pa.array([min(r.time_ns for r in c) for c in chunks], pa.int64()),
            "max_ns": pa.array([max(r.time_ns for r in c) for c in chunks], pa.int64()),
            "records": pa.array([len(c) for c in chunks], pa.int32()),
        }
        | {f"b{i}": pa.array([f[i] for f in filters], pa.uint64()) for i in range(WORDS)}
    )


def masks(terms: Terms) -> dict[int, int]:
    """Filter column -> the bits every block that may match has set."""
    out: dict[int, int] = {}
    for w in terms.all_words():
        for bit in bit_positions(w):
            out[bit >> 6] = out.get(bit >> 6, 0) | 1 << (bit & 63)
    return out


class DuckDBLogStore(SqlLogStore):
    """Log records in one DuckDB file; `path=None` keeps them in memory."""

    dialect = DUCKDB

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

    # --- the engine's part of the reads -----------------------------------------------------

    def _rows(self, sql: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            return list(cur.execute(sql, params).fetchall())

    def _regex(self, column: str, pattern: str) -> str:
        return f"regexp_matches({column}, {pattern})"

    def _attribute_is(self, key: str, value: str, p: Params) -> str:
        path = '$."' + key + '"'  # quoted: a name with dots is one key, not a path
        return f"json_extract_string(attributes, {p(path)}) = {p(value)}"

    def _text_where(self, f: LogFilter, p: Params) -> list[str]:
        return [f"block IN ({self.blocks_sql(f, p)})"]

    @staticmethod
    def blocks_sql(f: LogFilter, p: Params) -> str:
        """The blocks of `f`'s project and time whose filter holds every word of its text."""
        assert f.text is not None
        checks = []
        for col, mask in sorted(masks(f.text).items()):
            m = p(mask)
            checks.append(f"(b{col} & {m}::UBIGINT) = {m}::UBIGINT")
        return (
            f"SELECT block FROM log_blocks WHERE project = {p(f.project)} "
            f"AND max_ns >= {p(f.start_ns)} AND min_ns < {p(f.end_ns)} AND {' AND '.join(checks)}"
        )

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
        """The project's records not stored yet, in blocks of `BLOCK_RECORDS` at most: one
        duplicate check, one insert of the records and one of their blocks' filters."""
        cur.register("wk_ids", pa.table({"log_id": [r.log_id for r in rows]}))
        stored = cur.execute(
            "SELECT l.log_id FROM logs l SEMI JOIN wk_ids i ON l.log_id = i.log_id "
            "WHERE l.project = $p AND l.time_ns BETWEEN $lo AND $hi",
            {"p": project, "lo": min(r.time_ns for r in rows),
             "hi": max(r.time_ns for r in rows)},
        ).fetchall()  # fmt: skip
        cur.unregister("wk_ids")
        if stored:
            old = {i for (i,) in stored}
            rows = [r for r in rows if r.log_id not in old]
            if not rows:
                return 0
        first = self._next_block
        chunks = [rows[i : i + BLOCK_RECORDS] for i in range(0, len(rows), BLOCK_RECORDS)]
        blocks = [first + k for k, chunk in enumerate(chunks) for _ in chunk]
        table = pa.table(
            {"block": pa.array(blocks, pa.int64())}
            | {
                n: pa.array(v, pa.int64() if n in _INT else pa.string())
                for n, v in columns(rows).items()
            }
        )
        cur.register("wk_logs", table)
        cur.execute("INSERT INTO logs SELECT * FROM wk_logs")
        cur.unregister("wk_logs")
        cur.register("wk_blocks", _filters(project, first, chunks))
        cur.execute("INSERT INTO log_blocks SELECT * FROM wk_blocks")
        cur.unregister("wk_blocks")
        self._next_block += len(chunks)
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
