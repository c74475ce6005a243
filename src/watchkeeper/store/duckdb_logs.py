"""The log store on DuckDB: narrow columns to filter on, bodies searched through a token
filter per block instead of read whole (the reads are `logs.SqlLogStore`'s).

Its own database file (`<data_dir>/logs.duckdb`), as the metric store has, for the same
reasons (its writer never waits on the span writer's lock or checkpoints). The bodies are
compressed by zstd (since migration 3), the other text columns as DuckDB chooses
(dictionary and FSST).

**Text access path.** Each write appends its records in blocks (per project, in time
order, at most `BLOCK_RECORDS`) and records, in `log_blocks`, the block's time range and a
Bloom filter of the words of its bodies: 16,384 bits in 256 UBIGINT columns, 3 bits per
word, computed by the engine (`_log_blocks`). A search
for words or phrases first keeps the blocks whose filter has every bit of every word (a
handful of columns of a table a few hundred times smaller than the logs: DuckDB reads only
the columns a query names), then matches the bodies of those blocks only.

**Re-delivery.** Before a block is written, the ids of its records already stored (in the
batch's time range) are left out, under the one writer lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.model import LogRow
from watchkeeper.store import _duckdb_file, _duckdb_schema
from watchkeeper.store._dialect import DUCKDB, Params
from watchkeeper.store._log_blocks import (
    BIT_SQL,
    HASHES,
    WORDS,
    bits_sql,
    filters,
    filters_sql,
    numbered,
    words_sql,
)
from watchkeeper.store.logs import COLUMNS, LogFilter, SqlLogStore, Terms, columns, log_table

_INT = {"time_ns", "observed_ns", "severity_number"}

#: Records written between two checkpoints: one of DuckDB's row groups. DuckDB's own
#: checkpoints (every 16 MiB of WAL: ~35k records) rewrote the last row group, partly
#: filled, each time: every row group ~3 times, and the blocks it left made a third of the
#: file free space (300k bench records written in groups of 8,000, one process: 137 bytes
#: on disk a record, 31% free, 18.3 µs of CPU a record; a checkpoint per row group: 105,
#: 10%, 16.4 µs). The rows since the last one are in memory (~70 MiB at most).
CHECKPOINT_ROWS = 122_880
#: DuckDB's own WAL size trigger, kept only as a bound past `CHECKPOINT_ROWS` (records of
#: huge bodies).
WAL_LIMIT = "256MiB"
#: How long a checkpoint waits for the searches in flight (new ones wait for it meanwhile,
#: and for its end). DuckDB keeps the blocks a checkpoint replaces while a query may read
#: them, and writes the new ones past them: checkpoints beside the bench's searches left a
#: quarter to a third of the file free (87-104 bytes on disk a record; without searches 7%,
#: 68). Past the wait it checkpoints anyway: a long search costs space, never a write.
CHECKPOINT_WAIT_S = 2.0


def logs_ddl(compression: dict[str, str]) -> str:
    """The `logs` table with the given compression by column (DuckDB's choice elsewhere)."""
    cols = [
        f"{n} {'BIGINT' if n in _INT else 'VARCHAR'} NOT NULL"
        + (f" USING COMPRESSION {compression[n]}" if n in compression else "")
        for n in COLUMNS
    ]
    return f"CREATE TABLE logs (block BIGINT NOT NULL, {', '.join(cols)})"


MIGRATIONS: _duckdb_schema.Migrations = (
    (
        1,
        "log records in blocks, and each block's time range and word filter",
        (
            logs_ddl({}),
            "CREATE TABLE log_blocks (block BIGINT PRIMARY KEY, project VARCHAR NOT NULL, "
            "min_ns BIGINT NOT NULL, max_ns BIGINT NOT NULL, records INTEGER NOT NULL, "
            + ", ".join(f"b{i} UBIGINT NOT NULL" for i in range(WORDS))
            + ")",
        ),
    ),
    (
        2,
        "word filters from the MD5 of each word as the engine splits and folds it (the "
        "writer computes them in SQL, no longer in Python): every block's recomputed",
        ("DELETE FROM log_blocks", f"INSERT INTO log_blocks {filters_sql(0)}"),
    ),
    # The bodies by zstd (DuckDB's zstd over a vector of them; FSST before). On the bench's
    # records (1M through the server, rewritten whole) blocks in use went from 87.3 to 61.3
    # bytes a record; a scan of every body for a word 121 -> 166 ms, and a search reads only
    # the bodies of the blocks its word filter keeps. ClickHouse keeps its bodies by ZSTD(1)
    # too (`clickhouse_logs.CODECS`).
    (
        3,
        "bodies compressed by zstd: the records copied into the new layout, in their order "
        "(DuckDB has no ALTER for a column's compression)",
        (
            "ALTER TABLE logs RENAME TO wk_logs_v2",
            logs_ddl({"body": "zstd"}),
            "INSERT INTO logs SELECT * FROM wk_logs_v2",
            "DROP TABLE wk_logs_v2",
        ),
    ),
)


class DuckDBLogStore(SqlLogStore):
    """Log records in one DuckDB file; `path=None` keeps them in memory."""

    dialect = DUCKDB

    def __init__(
        self,
        path: Path | None = None,
        *,
        memory_limit_mb: int | None = None,
        clock: Callable[[], float] = time.time,
        checkpoint_rows: int = CHECKPOINT_ROWS,
    ) -> None:
        self._path = path
        self._checkpoint_rows = checkpoint_rows
        self._clock = clock
        self._con = _duckdb_file.connect(
            path,
            what="log store",
            migrate=lambda con: _duckdb_schema.migrate(con, steps=MIGRATIONS),
            memory_limit_mb=memory_limit_mb,
            settings=[f"SET checkpoint_threshold = '{WAL_LIMIT}'"],
        )
        self._cursor = _duckdb_file.Cursors(self._con, what="log store")
        with self._cursor() as cur:
            ((last,),) = cur.execute("SELECT coalesce(max(block), 0) FROM log_blocks").fetchall()
        self._next_block = int(last) + 1
        self._unchecked = 0  # records written since the last checkpoint (by this process)
        self._lock = threading.Lock()  # one write at a time
        self._gate = _duckdb_file.ReadGate()  # reads in flight; a checkpoint runs alone

    def close(self) -> None:
        """Checkpoint and close the file."""
        with self._lock:
            self._con.close()

    # --- the engine's part of the reads -----------------------------------------------------

    def _rows(self, sql: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
        with self._gate.reading(), self._cursor() as cur:
            return list(cur.execute(sql, params).fetchall())

    def _regex(self, column: str, pattern: str) -> str:
        return f"regexp_matches({column}, {pattern})"

    def _attribute_is(self, key: str, value: str, p: Params) -> str:
        path = '$."' + key + '"'  # quoted: a name with dots is one key, not a path
        return f"json_extract_string(attributes, {p(path)}) = {p(value)}"

    def _text_where(self, f: LogFilter, p: Params) -> list[str]:
        return [f"block IN ({self.blocks_sql(f, p)})"]

    def masks(self, terms: Terms) -> dict[int, int]:
        """Filter column -> the bits every block that may match has set (the words taken
        through `words_sql` and `BIT_SQL`, as the writer took the bodies')."""
        rows = self._rows(
            f"SELECT {BIT_SQL} AS bit FROM (SELECT md5_number(unnest({words_sql('$text')})) "
            f"AS h), range({HASHES}) AS r(i)",
            {"text": " ".join(terms.all_words())},
        )
        out: dict[int, int] = {}
        for (bit,) in rows:
            out[bit >> 6] = out.get(bit >> 6, 0) | 1 << (bit & 63)
        return out

    def blocks_sql(self, f: LogFilter, p: Params) -> str:
        """The blocks of `f`'s project and time whose filter holds every word of its text."""
        assert f.text is not None
        checks = ["true"]  # a text of no word the filter knows narrows nothing
        for col, mask in sorted(self.masks(f.text).items()):
            m = p(mask)
            checks.append(f"(b{col} & {m}::UBIGINT) = {m}::UBIGINT")
        return (
            f"SELECT block FROM log_blocks WHERE project = {p(f.project)} "
            f"AND max_ns >= {p(f.start_ns)} AND min_ns < {p(f.end_ns)} AND {' AND '.join(checks)}"
        )

    # --- writes -----------------------------------------------------------------------------

    def write(self, rows: Sequence[LogRow]) -> int:
        """Store the records not stored yet (by `log_id`); return how many were new."""
        return self.write_table(log_table(columns(rows))) if rows else 0

    def write_table(self, table: pa.Table) -> int:
        """`write` of a `log_table`: Python handles whole columns (Arrow, numpy); the words
        and their filter bits are SQL the engine runs (`_log_blocks`), off the interpreter's
        lock."""
        if not table.num_rows:
            return 0
        with self._lock, self._cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                table = numbered(_fresh(cur, table), self._next_block)
                if table.num_rows:
                    cur.register("wk_logs", table)
                    cur.execute("INSERT INTO logs SELECT * FROM wk_logs")
                    bits = cur.execute(bits_sql("wk_logs")).fetchnumpy()
                    cur.unregister("wk_logs")
                    cur.register("wk_blocks", blocks := filters(table, bits))
                    cur.execute("INSERT INTO log_blocks SELECT * FROM wk_blocks")
                    cur.unregister("wk_blocks")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            if table.num_rows:
                self._next_block += blocks.num_rows
                self._unchecked += table.num_rows
            if self._unchecked >= self._checkpoint_rows:
                with self._gate.held(CHECKPOINT_WAIT_S):
                    cur.execute("CHECKPOINT")
                self._unchecked = 0
        return int(table.num_rows)

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


def _fresh(cur: Any, table: pa.Table) -> pa.Table:
    """The records of `table` not stored yet, the first of each (project, id): the stored
    ones are looked for in the batch's time range only, where a copy's time must be."""
    cur.register("wk_ids", table.select(["project", "log_id"]))
    lo, hi = pc.min_max(table["time_ns"]).values()
    stored = cur.execute(
        "SELECT l.project, l.log_id FROM logs l SEMI JOIN wk_ids i "
        "ON l.project = i.project AND l.log_id = i.log_id WHERE l.time_ns BETWEEN $lo AND $hi",
        {"lo": lo.as_py(), "hi": hi.as_py()},
    ).fetchall()
    cur.unregister("wk_ids")
    keys = pc.binary_join_element_wise(table["project"], table["log_id"], "\0")
    if not stored and pc.count_distinct(keys).as_py() == table.num_rows:
        return table  # the usual case: all new, no Python per record
    seen = {f"{p}\0{i}" for p, i in stored}
    keep = []
    for key in keys.to_pylist():
        keep.append(key not in seen)
        seen.add(key)
    return table.filter(pa.array(keep, pa.bool_()))
