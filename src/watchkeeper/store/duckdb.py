"""The DuckDB span store: one file (or memory), one writer thread, queries from any thread.

Spans live in a narrow append-only table with times as BIGINT ns, so DuckDB's per-row-group
min/max (zone maps) skip the data outside a time range; ingest order is close to time order.
Payloads are zstd blobs in their own table, read when a trace is opened or text searched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.errors import StoreDataError, StoreError
from watchkeeper.malloc import trim_malloc
from watchkeeper.model import ColumnBatch, ScoreRow, SpanBatch
from watchkeeper.store import _duckdb_file, _traces
from watchkeeper.store import _render as r
from watchkeeper.store import _rollup as ru
from watchkeeper.store import _trace_context as tc
from watchkeeper.store._arrow import arrow_tables, first_of_each_key, scores_table
from watchkeeper.store._dialect import DUCKDB
from watchkeeper.store._duckdb_rollups import COMPACT_EVERY, RollupWriter
from watchkeeper.store._duckdb_schema import migrate
from watchkeeper.store._payload import PayloadCodec
from watchkeeper.store._sql import SqlStore
from watchkeeper.store._text_search import TEXT_BUDGET, TEXT_CHUNK

log = logging.getLogger("watchkeeper.store")

#: WAL size that triggers a checkpoint (also done on close). 16 MiB (DuckDB's default)
#: checkpointed on nearly every batch (15k spans/s, falling as the file grew); writes of 1M
#: spans in 20k batches, measured: 1 GiB 79k/s with 828 MiB of engine memory, 256 MiB 83k/s
#: with 460 MiB, 64 MiB 76k/s with 311 MiB. Smaller checkpoints need less memory at once.
CHECKPOINT_THRESHOLD = "64MiB"
#: Rows per row group of the tables (DuckDB's default: 122,880). A checkpoint that completes
#: a row group compresses all of it while the writer waits: at 122,880 rows that was 1.7-2.5
#: s of the span tables every 12 batches of 10k (the soak's lag p99 of 5 s); at 16,384 it is
#: under 0.5 s, and writes got cheaper too (bench.ingest --growth 2: 26.4 -> 17.6 us/span,
#: the COMMIT 13.5 -> 6.0). At 32,768 the soak's lag p99 rose from 0.9-1.6 s to 1.5-2.3 s.
#: An insert of a whole row group or more is written into the file's blocks, compressed,
#: rather than into the WAL first and the file again at the checkpoint: ingest's batches
#: (`batch_max_spans`) are at least a row group. `--growth 1` with writes of 10,240 spans:
#: 23.9 us/span (COMMIT 10.6); 12,288: 24.4; 16,384: 15.7 (5.2); 24,576: 14.6 (3.2).
#: At 8,192 with 10,240-span writes: 24.5 us/span and a write of 5 s. Smaller row groups
#: hold more metadata in memory: see REOPEN_EVERY.
ROW_GROUP_SIZE = 16_384
#: Spans written between two openings of the file. DuckDB keeps the metadata of each row
#: group written since it opened the file in its C heap, outside its memory limit, and
#: frees it only when it closes (at 16,384 rows: 9-11 MiB a million spans, measured with
#: `watchkeeper_process_malloc_bytes`; closing after 3M freed 27 of 59 MiB, and opening
#: the file again takes 0.03 s). Opened again every 2M, the server holds at most ~20 MiB.
REOPEN_EVERY = 2_000_000
#: How long opening the file again waits for the queries in flight (new ones wait for it);
#: when they take longer, it is tried again after the next write.
REOPEN_WAIT_S = 2.0
#: The memory limit `release_memory` sets for a moment on a store in memory (one in a file
#: is opened again instead): every cached block is evicted.
RELEASE_TO = "8MB"
#: The parts of a write its `write_timer` sees: the batch's Arrow tables, the check for
#: spans stored before (a replay), the trace contexts, the spans' insert, the rollups'
#: partial rows, their merge (every COMPACT_EVERY writes), the payloads, and the COMMIT
#: (with the checkpoint it sets off once the WAL passes CHECKPOINT_THRESHOLD).
WRITE_PARTS = (
    "arrow", "replay", "contexts", "spans", "rollups", "merge", "payloads", "commit", "reopen",
)  # fmt: skip
#: Failures of a write caused by the rows themselves (a value out of a column's range, a
#: type the column cannot take): retrying them cannot help. Anything else (I/O, memory,
#: a lock) may pass, so the writer retries it.
_DATA_ERRORS = (
    OverflowError,
    ValueError,  # pyarrow's ArrowInvalid is one
    TypeError,
    pa.ArrowException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.InvalidInputException,
    duckdb.TypeMismatchException,
    duckdb.ConstraintException,
)


def _is_fatal(exc: BaseException) -> bool:
    """DuckDB's own failure that leaves the database unusable until it is opened again."""
    return isinstance(exc, duckdb.FatalException) or (
        isinstance(exc, duckdb.Error) and "database has been invalidated" in str(exc)
    )


class DuckDBStore(SqlStore):
    """The `Store` on DuckDB; `path=None` keeps everything in memory (tests).

    It is its own `Executor`: the queries and the writer share its connection, its cursors
    (one per thread) and its recovery after a fatal error.
    """

    dialect = DUCKDB
    #: Ingest workers may `pack` payloads with this codec before they reach `write`.
    payload_codec = PayloadCodec

    def __init__(
        self,
        path: Path | None = None,
        *,
        text_chunk: int = TEXT_CHUNK,
        text_budget: int = TEXT_BUDGET,
        use_rollup: bool = True,
        compact_every: int = COMPACT_EVERY,
        memory_limit_mb: int | None = None,
        threads: int | None = None,
        trace_window_s: int = tc.WINDOW_NS // 10**9,
        minute_from_spans: int = ru.MINUTE_FROM_SPANS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._path = path
        self._memory_limit_mb = memory_limit_mb
        self._threads = threads
        self._trace_window_ns = trace_window_s * 10**9
        self._con = self._connect()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[Any] = []
        self._cursors_lock = threading.Lock()
        # queries in flight, so `release_memory` can wait for a moment without any
        self._gate = _duckdb_file.ReadGate()
        self._codec = PayloadCodec()
        super().__init__(
            self,
            text_chunk=text_chunk,
            text_budget=text_budget,
            use_rollup=use_rollup,  # False: every query from the spans (exact, slower over days)
            minute_from_spans=minute_from_spans,
            clock=clock,
        )
        self._rollups = RollupWriter(clock, compact_every)
        self._generation = 0  # bumped when the database is opened again (after a fatal error)
        self.reopened = 0  # how many times (for metrics and tests)
        self._since_open = 0  # spans written since the file was opened (REOPEN_EVERY)

    def _connect(self) -> Any:
        """Open the database, apply the settings, and migrate it."""
        # The default (16 MiB) checkpointed on nearly every ingest batch: measured 15k
        # spans/s falling as the file grew, 42k/s flat with 1 GiB (bench: /tmp/wperf).
        settings = [f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'"]
        if self._threads is not None:  # None: DuckDB's own, one per core (config store.threads)
            settings.append(f"SET threads = {int(self._threads)}")
        return _duckdb_file.connect(
            self._path,
            what="span store",
            migrate=migrate,
            memory_limit_mb=self._memory_limit_mb,
            settings=settings,
            row_group_size=ROW_GROUP_SIZE,
        )

    def _recover(self, exc: BaseException, generation: int) -> None:
        """After a fatal error DuckDB refuses every call until the database is opened again
        (seen: a checkpoint that ran out of memory); open it again, so writes can resume.
        `generation`: the one the failed call used (an older one is already reopened)."""
        if not _is_fatal(exc):
            return
        with self._cursors_lock:
            if generation != self._generation:
                return
            self._open_again()
            self.reopened += 1

    def _open_again(self) -> None:
        """Close the connection and its cursors, and open the file again (the caller holds
        `_cursors_lock`). When it cannot be opened, the next cursor tries again."""
        for cur in self._cursors:
            with contextlib.suppress(duckdb.Error):
                cur.close()
        self._cursors.clear()
        with contextlib.suppress(duckdb.Error):
            self._con.close()
        self._generation += 1
        self._con = None
        self._con = self._connect()  # raises StoreError when it cannot

    # -- plumbing ----------------------------------------------------------------------------
    def _cursor(self) -> Any:
        """This thread's own connection to the database (DuckDB cursors are not shared)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None or self._local.generation != self._generation:
            with self._cursors_lock:
                if self._con is None:  # opening it again failed: try now
                    self._con = self._connect()
                cur = _duckdb_file.attached_cursor(self._con)
                self._cursors.append(cur)
                self._local.generation = self._generation
            self._local.cursor = cur
        return cur

    def rows(self, q: r.Query) -> list[tuple[Any, ...]]:
        """The rows of `q` (the `Executor`'s query), on this thread's cursor."""
        generation = self._generation
        with self._reading_query():
            try:
                rows: list[tuple[Any, ...]] = self._cursor().execute(q.sql, q.params).fetchall()
            except duckdb.Error as exc:
                self._recover(exc, generation)
                raise _duckdb_file.engine_error("span store query failed", exc) from exc
        return rows

    @contextmanager
    def _reading_query(self) -> Iterator[None]:
        """Count a query in flight (the file is not closed under it); wait while the engine
        is being released. A snapshot counts once, for all its queries."""
        if getattr(self._local, "snapshot", False):
            yield
            return
        with self._gate.reading():
            yield

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._write_lock:
            generation = self._generation
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
                with self.write_timer("commit"):
                    cur.execute("COMMIT")
            except BaseException as exc:
                # whatever failed (bad rows, the database), leave no transaction open
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                if _is_fatal(exc):  # the database's failure, never the rows'
                    self._recover(exc, generation)
                    raise StoreError(f"span store failed, opened again: {exc}") from exc
                if isinstance(exc, _DATA_ERRORS):
                    raise StoreDataError(f"span store cannot keep these rows: {exc}") from exc
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"span store write failed: {exc}") from exc
                raise

    # -- writes ------------------------------------------------------------------------------
    def _new_only(self, cur: Any, spans: Any, starts: tuple[int, int]) -> Any:
        """The spans of the batch not stored yet; the batch's time range bounds the scan."""
        keys = spans.select(["project", "trace_id", "span_id"])
        cur.register("wk_batch_keys", keys)
        try:
            stored = cur.execute(
                "SELECT s.project, s.trace_id, s.span_id FROM spans s "
                "SEMI JOIN wk_batch_keys b ON s.span_id = b.span_id "
                "AND s.trace_id = b.trace_id AND s.project = b.project "
                "WHERE s.start_ns BETWEEN $lo AND $hi",
                {"lo": starts[0], "hi": starts[1]},
            ).fetchall()
        finally:
            cur.unregister("wk_batch_keys")
        if not stored:  # the usual case: nothing of the batch is stored yet
            return spans
        old = {(a, b, c) for a, b, c in stored}  # a replay: Python objects for these only
        columns = (keys[n].to_pylist() for n in keys.column_names)
        kept = [k not in old for k in zip(*columns, strict=True)]
        return spans.filter(pa.array(kept))

    def write(self, batch: SpanBatch | ColumnBatch) -> int:
        """Store the spans (and payloads) not stored yet; return how many were new."""
        if not len(batch):
            return 0
        new = self._write_new(batch)
        self._since_open += new
        if self._path is not None and self._since_open >= REOPEN_EVERY:
            with self.write_timer("reopen"), self._write_lock:
                if self._release(wait_s=REOPEN_WAIT_S):
                    self._since_open = 0
        return new

    def _write_new(self, batch: SpanBatch | ColumnBatch) -> int:
        part = self.write_timer
        with self._transaction() as cur:  # rows an Arrow column refuses: a StoreDataError
            with part("arrow"):
                data, payloads = arrow_tables(batch, self._codec)
                data = first_of_each_key(data)
                lo, hi = pc.min_max(data["start_ns"]).values()
            starts = (lo.as_py(), hi.as_py())
            with part("replay"):
                new = self._new_only(cur, data, starts)
            if not new.num_rows:
                return 0
            with part("contexts"):
                new, fixed = tc.apply(cur, new, starts, self._trace_window_ns)
            # views are unregistered on success only: a statement after a failed one raises
            # anew and would hide the failure (a view left behind is replaced by the next
            # `register`)
            cur.register("wk_new_spans", new)
            self._store_new(cur, "wk_new_spans", fixed)
            if payloads.num_rows:  # those of the new spans, once each
                with part("payloads"):
                    unique = first_of_each_key(payloads)
                    self._store_payloads(cur, unique, new.num_rows < data.num_rows)
            cur.unregister("wk_new_spans")
        return int(new.num_rows)

    @staticmethod
    def _store_payloads(cur: Any, payloads: pa.Table, some_stored: bool) -> None:
        """Append the payloads of the new spans (`wk_new_spans`): all of them unless some
        spans of the batch were stored before (a replay)."""
        cur.register("wk_new_payloads", payloads)
        names = ", ".join(payloads.column_names)
        cols = ", ".join(f"p.{c}" for c in payloads.column_names)
        sql = f"INSERT INTO payloads ({names}) SELECT {cols} FROM wk_new_payloads p"
        if some_stored:
            sql += (
                " SEMI JOIN wk_new_spans n ON n.span_id = p.span_id "
                "AND n.trace_id = p.trace_id AND n.project = p.project"
            )
        cur.execute(sql)
        cur.unregister("wk_new_payloads")

    def _store_new(self, cur: Any, source: str, fixed: set[int]) -> None:
        """Append the new spans in `source` to the spans and rollups."""
        with self.write_timer("spans"):
            cur.execute(f"INSERT INTO spans BY NAME SELECT * FROM {source}")
        self._rollups.append(cur, source, fixed, self.write_timer)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """This thread's queries inside see one state of the database, the one of its first
        query (`Executor`): a read transaction on its cursor (an inner one joins the outer)."""
        if getattr(self._local, "snapshot", False):
            yield
            return
        with self._reading_query():  # its transaction is not closed under it
            generation = self._generation
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
            except duckdb.Error as exc:
                self._recover(exc, generation)
                raise StoreError(f"span store query failed: {exc}") from exc
            self._local.snapshot = True
            try:
                yield
            finally:
                self._local.snapshot = False
                with contextlib.suppress(duckdb.Error):  # nothing written: ends it either way
                    cur.execute("ROLLBACK")

    def trace_range_query(self, trace_id: str) -> r.Query:
        """A trace's range from the `traces` side table (`Executor`)."""
        return _traces.range_query(trace_id)

    @staticmethod
    def _append(cur: Any, table: str, data: Any) -> None:
        view = f"wk_new_{table}"
        cur.register(view, data)
        cols = ", ".join(data.column_names)
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}")
        cur.unregister(view)

    def write_scores(self, scores: Sequence[ScoreRow]) -> None:
        """Store scores; a score_id already stored is left as it is."""
        unique = list({s.score_id: s for s in reversed(scores)}.values())
        if not unique:
            return
        with self._transaction() as cur:
            data = scores_table(unique)
            cur.register("wk_new_scores", data)
            cols = ", ".join(data.column_names)
            cur.execute(f"INSERT OR IGNORE INTO scores ({cols}) SELECT {cols} FROM wk_new_scores")
            cur.unregister("wk_new_scores")

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """Drop spans, payloads, scores and trace entries older than `before_ns`."""
        where = "project = $p AND " if project is not None else ""
        params: dict[str, object] = {"t": before_ns}
        if project is not None:
            params["p"] = project
        with self._transaction() as cur:
            (row,) = cur.execute(
                f"SELECT count(*) FROM spans WHERE {where}start_ns < $t", params
            ).fetchall()
            for table, col in (
                ("spans", "start_ns"),
                ("payloads", "start_ns"),
                ("scores", "created_ns"),
            ):
                cur.execute(f"DELETE FROM {table} WHERE {where}{col} < $t", params)
            cur.execute(f"DELETE FROM traces WHERE {where}max_start_ns < $t", params)
            RollupWriter.cut(cur, where, params, before_ns)
        return int(row[0]) if row else 0

    # -- engine --------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Memory the engine holds now (its buffer pool and the rest)."""
        rows = self._rows(r.Query("SELECT sum(memory_usage_bytes) FROM duckdb_memory()", {}))
        return int(rows[0][0] or 0)

    def release_memory(self) -> bool:
        """Give back to the system what the engine holds after a burst of writes.

        DuckDB keeps the blocks it read or wrote cached up to its memory limit, the rows
        written since the last checkpoint, and the metadata of the row groups it wrote, long
        after the burst that needed them. This checkpoints, then closes the file and opens
        it again (in memory: lowers the limit for a moment), which frees all of it (the
        blocks are in the file, and in the OS's page cache, which RSS does not count). That
        needs a moment without queries: queries arriving then wait for it, and when queries
        are running, the memory stays (False; try again later).
        """
        with self._write_lock:
            if not self._release(wait_s=0.0):
                return False
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages too
        return True

    def _release(self, *, wait_s: float) -> bool:
        """Checkpoint, then free the engine's memory once no query is in flight: a file is
        closed and opened again (the cache and the row groups' metadata go, REOPEN_EVERY),
        a database in memory lowers its limit for a moment. Queries arriving meanwhile wait;
        those in flight are waited for `wait_s` at most (False: they ran longer, or the
        engine failed; the memory stays until the next try). The caller holds the write
        lock."""
        try:
            cur = self._cursor()
            cur.execute("CHECKPOINT")  # runs beside queries; the writer waits for it
            with self._gate.held(wait_s) as quiet:
                if not quiet:
                    return False
                if self._path is None:
                    try:
                        cur.execute(f"SET memory_limit = '{RELEASE_TO}'")
                    finally:
                        cur.execute(_duckdb_file.memory_limit_sql(self._memory_limit_mb))
                else:
                    with self._cursors_lock:
                        self._open_again()
                    trim_malloc()  # the metadata freed lies amid live blocks: its pages back
        except (duckdb.Error, StoreError) as exc:  # not fatal: the memory stays until next time
            log.warning("span store: could not release memory: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Checkpoint the WAL into the file and close every connection."""
        with self._write_lock, self._cursors_lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            if self._con is None:  # opening it again had failed: nothing open
                return
            # an in-memory or already-closed database has nothing to flush
            with contextlib.suppress(duckdb.Error):
                self._con.execute("CHECKPOINT")
            self._con.close()
