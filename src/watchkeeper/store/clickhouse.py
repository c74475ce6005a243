"""The ClickHouse span store: a ClickHouse server (`http(s)://…`) or the same engine
in-process (`chdb:///PATH`, through clickhouse-connect's chDB backend).

Every read is `SqlStore`'s, rendered in the ClickHouse dialect; this module holds what
differs: the connection, the schema (`_clickhouse_schema`), Arrow inserts and the writer.
One writer at a time (a lock): the key check that keeps replays from counting twice needs
it, and a chDB session written from several threads once stored wrong rows (DESIGN.md).
With chDB every call takes the lock: the in-process engine is one session.

Long (or busy) ranges are answered from the rollups of `_rollup`, kept by materialized
views (`_clickhouse_schema`), with the same answers and bounds as DuckDB's.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.errors import StoreDataError, StoreError
from watchkeeper.model import ColumnBatch, ScoreRow, SpanBatch
from watchkeeper.store import _clickhouse_context as tc
from watchkeeper.store import _clickhouse_schema as schema
from watchkeeper.store import _rollup as ru
from watchkeeper.store._arrow import arrow_tables, first_of_each_key, scores_table
from watchkeeper.store._context_arrow import keys, of_batch
from watchkeeper.store._dialect import CLICKHOUSE, Params
from watchkeeper.store._payload import PayloadCodec
from watchkeeper.store._render import Query
from watchkeeper.store._sql import SqlStore
from watchkeeper.store._text_search import TEXT_BUDGET, TEXT_CHUNK

#: The longest statement the engine parses: the writer's key check lists a batch's ids as
#: literals (10k spans: ~0.6 MB of ids; the default is 256 KiB).
_QUERY_BYTES = 64 * 2**20
#: Session settings of every query: aggregates over no rows are NULL (not 0 or nan), as in
#: standard SQL and DuckDB, so both engines give the same answers to the same queries; the
#: statement size above.
SETTINGS = {"aggregate_functions_null_for_empty": 1, "max_query_size": _QUERY_BYTES}
#: The payload blobs are bytes (every other String column is text).
_BLOBS = {"io": "bytes", "meta": "bytes"}
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: chDB runs one engine per process (every client on it shares it): one call at a time.
_EMBEDDED = threading.RLock()
_SCHEMES = ("chdb://", "http://", "https://")


def schema_statements(cluster: str | None = None, ttl_days: int | None = None) -> list[str]:
    """The DDL of the store's latest layout: as the store creates it, or for a named cluster
    (`ReplicatedMergeTree` tables and `Distributed` ones over them)."""
    if cluster is None:
        return [schema.VERSION_DDL, *schema.create_statements(ttl_days)]
    return schema.cluster_statements(cluster, ttl_days)


def check_url(url: str) -> str:
    """`url` if it names a ClickHouse we can reach; ValueError saying what to write."""
    if not url.startswith(_SCHEMES):
        raise ValueError(
            f"clickhouse_url {url!r} is not a ClickHouse address: use http(s)://HOST:8123 "
            "(a server; user and password as http://USER:PASSWORD@HOST:8123) or "
            "chdb:///PATH (the engine in-process, its files in PATH)"
        )
    return url


def _connect(url: str, database: str) -> Any:
    """A clickhouse-connect client for `url` using `database` (created when missing);
    StoreError naming the URL when it does not answer."""
    import clickhouse_connect

    if not _DATABASE.fullmatch(database):
        raise StoreError(f"ClickHouse database name {database!r}: use letters, digits and _")
    extra: dict[str, Any] = {}
    if not url.startswith("chdb://"):
        extra["autogenerate_session_id"] = False  # no server session: queries from any thread
    try:
        with _EMBEDDED if url.startswith("chdb://") else nullcontext():
            admin = clickhouse_connect.get_client(dsn=url, **extra)
            admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
            admin.close()
            client = clickhouse_connect.get_client(dsn=url, database=database, **extra)
            client.query("SELECT 1")
    except Exception as exc:  # the driver's errors, the network's, chDB's
        raise StoreError(
            f"cannot reach ClickHouse at {_redacted(url)}: {exc}; check store.clickhouse_url "
            "(--clickhouse-url) and that the server runs and accepts this user"
        ) from exc
    return client


def _redacted(url: str) -> str:
    """`url` without its password (error messages and logs)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.partition(':')[0]}:***@{host}"


def _is_data_error(exc: BaseException) -> bool:
    """A failure caused by the rows themselves (retrying cannot help)."""
    from clickhouse_connect.driver.exceptions import DataError

    return isinstance(exc, (DataError, pa.ArrowException, OverflowError, ValueError, TypeError))


class ClickHouseStore(SqlStore):
    """The `Store` on ClickHouse; it is its own `Executor` (the client and its lock)."""

    dialect = CLICKHOUSE
    #: Ingest workers may `pack` payloads with this codec before they reach `write`.
    payload_codec = PayloadCodec

    def __init__(
        self,
        url: str,
        *,
        database: str = "watchkeeper",
        ttl_days: int | None = None,
        trace_window_s: int = 3600,
        text_chunk: int = TEXT_CHUNK,
        text_budget: int = TEXT_BUDGET,
        use_rollup: bool = True,
        minute_from_spans: int = ru.MINUTE_FROM_SPANS,
        clock: Callable[[], int] = time.time_ns,
        writer: str | None = None,
    ) -> None:
        self._url = check_url(url)
        # names this store's writes in the journal: the same after a restart
        self._writer = writer or f"{socket.gethostname()}"
        self._client = _connect(url, database)
        self.database = database
        self._embedded = url.startswith("chdb://")
        self._write_lock = threading.RLock()
        self._codec = PayloadCodec()
        self._trace_window_ns = trace_window_s * 10**9
        self._pruned_ns = 0  # when the per-minute rollup was last pruned (by `clock`)
        # the hours of a write that failed half-way (ClickHouse went away): the next write
        # rolls them up again first (a crash instead leaves them to `_repair`)
        self._unfinished: set[int] = set()
        self._journaled = False  # whether this store recorded a write (a reader never does)
        super().__init__(
            self,
            text_chunk=text_chunk,
            text_budget=text_budget,
            use_rollup=use_rollup,  # False: every query from the spans (the views still fill)
            minute_from_spans=minute_from_spans,
            clock=clock,
        )
        try:
            with self._write_lock:
                self.version = schema.migrate(self._command, self._applied)
                if ttl_days is not None:
                    for sql in schema.ttl_statements(ttl_days):
                        self._command(sql)
                self.repaired = self._repair()  # hours of a write a crash cut short
        except BaseException:  # refused (a newer schema) or failed: release the engine
            with self._calling(), contextlib.suppress(Exception):
                self._client.close()
            raise

    # -- executor ----------------------------------------------------------------------------
    def _calling(self) -> AbstractContextManager[object]:
        """Serialize the call when the engine is in-process (one chDB session)."""
        return _EMBEDDED if self._embedded else nullcontext()

    def rows(self, q: Query) -> list[tuple[Any, ...]]:
        """The rows of `q` (`Executor`)."""
        try:
            with self._calling():
                result = self._client.query(
                    q.sql, parameters=q.params, settings=SETTINGS, column_formats=_BLOBS
                )
        except Exception as exc:
            raise StoreError(f"span store query failed: {exc}") from exc
        return [tuple(row) for row in result.result_rows]

    def trace_range_query(self, trace_id: str) -> Query:
        """A trace's range from the `traces` lookup table, ordered by id (`Executor`)."""
        p = Params(CLICKHOUSE)
        return Query(
            "SELECT minOrNull(min_start_ns), maxOrNull(max_start_ns) FROM traces "
            f"WHERE trace_id = {p(trace_id)}",
            p.values,
        )

    def snapshot(self) -> AbstractContextManager[object]:
        """Nothing to hold (`Executor`): ClickHouse has no multi-statement read transaction;
        each query reads the parts committed when it starts."""
        return nullcontext()

    def _command(self, sql: str, params: dict[str, object] | None = None) -> None:
        with self._calling():
            self._client.command(sql, parameters=params, settings=SETTINGS)

    def _applied(self) -> int:
        (row,) = self.rows(Query("SELECT max(version) FROM schema_version", {}))
        return int(row[0] or 0)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write at a time; the engine's failures as StoreError (StoreDataError when the
        rows cannot be stored, so the writer sets them aside instead of retrying)."""
        with self._write_lock:
            try:
                yield
            except (StoreError, StoreDataError):
                raise
            except Exception as exc:
                if _is_data_error(exc):
                    raise StoreDataError(f"span store cannot keep these rows: {exc}") from exc
                raise StoreError(f"span store write failed: {exc}") from exc

    def _insert(self, table: str, data: pa.Table) -> None:
        with self._calling():
            self._client.insert_arrow(table, data, settings=SETTINGS)

    # -- writes ------------------------------------------------------------------------------
    def _new_only(self, data: pa.Table, lo: int, hi: int) -> pa.Table:
        """The rows of `data` whose keys are not stored yet; the batch's time range bounds
        the scan. The ids go as literals (`tc.strings_sql`), the answer is compared in Arrow."""
        # the trace ids too: span ids alone may be shared by other traces (some tracers
        # number spans 1, 2, 3…): each one fetched
        sql = (
            "SELECT project, trace_id, span_id FROM spans "
            f"WHERE project IN {tc.strings_sql(pc.unique(data['project']))} "
            f"AND start_ns BETWEEN {lo} AND {hi} "
            f"AND trace_id IN {tc.strings_sql(pc.unique(data['trace_id']))} "
            f"AND span_id IN {tc.strings_sql(pc.unique(data['span_id']))}"
        )
        stored = self.rows(Query(sql, {}))
        if not stored:
            return data
        old = pa.array(["\x00".join(map(str, row)) for row in stored], pa.string())
        return data.filter(pc.invert(pc.is_in(keys(data), value_set=old)))

    def write(self, batch: SpanBatch | ColumnBatch) -> int:
        """Store the spans (and payloads) not stored yet; return how many were new.

        Column by column from the batch's Arrow tables (no row objects). Payloads go first:
        a crash between the two inserts leaves the spans unstored, and the replay stores
        both (a payload stored twice collapses on merge; reads keep one).
        """
        if not len(batch):
            return 0
        with self._writing():  # rows an Arrow column refuses: a StoreDataError
            data, payloads = arrow_tables(batch, self._codec)
            data = first_of_each_key(data)
            lo, hi = (int(v.as_py()) for v in pc.min_max(data["start_ns"]).values())
            if self._unfinished:  # a write that failed half-way: its hours rolled up again
                self._rebuild(self._unfinished)
                self._unfinished = set()
            new = self._new_only(data, lo, hi)
            if not new.num_rows:
                return 0
            if payloads.num_rows:  # those of the new spans, once each
                if new.num_rows < data.num_rows:
                    payloads = payloads.filter(pc.is_in(keys(payloads), keys(new)))
                self._insert("payloads", first_of_each_key(payloads))
            plan, window = self._plan(new, lo, hi)
            starts = new["start_ns"].to_numpy()
            self._unfinished = {int(h) * ru.HOUR_NS for h in np.unique(starts // ru.HOUR_NS)}
            self._unfinished |= window
            self._journal(self._unfinished)
            self._learn(plan, lo, hi)
            self._insert("spans", plan.table)
            if plan.contexts.num_rows:  # last: a replay after a crash learns (and fills) all again
                self._insert("trace_context", plan.contexts)
            self._unfinished = set()
            self._prune_minutes()
        return int(new.num_rows)

    def _prune_minutes(self) -> None:
        """Drop the per-minute rollup's rows past its horizon (by `clock`), hourly at most."""
        now = self._clock()
        if now - self._pruned_ns < ru.HOUR_NS:
            return
        self._pruned_ns = now
        self._command(f"DELETE FROM {ru.MINUTES.name} WHERE minute_ns < {now - ru.MINUTE_KEEP_NS}")

    def _window(self, lo: int, hi: int) -> tuple[int, int]:
        return max(lo - self._trace_window_ns, 0), min(hi + self._trace_window_ns, 2**63 - 1)

    def _plan(self, spans: pa.Table, lo: int, hi: int) -> tuple[tc.Plan, set[int]]:
        """The trace contexts of a write (`_clickhouse_context`): the new spans filled, the
        fields learned for spans stored before; and the hours those spans may lie in."""
        lo, hi = self._window(lo, hi)
        batch = of_batch(spans)
        # a trace has context rows only if it has spans stored (inserted before its rows):
        # found by id in `traces`, where `trace_context` would be scanned over the window
        # (2.5k ids a batch: its bloom filter skips nothing; 142 ms at 2M rows in the window)
        known = self._known_traces(batch)
        stored: dict[tuple[str, str], dict[str, str]] = {}
        if known:
            ids = pa.array(sorted(known), pa.string())
            mine = batch.filter(pc.is_in(batch["trace_id"], value_set=ids))
            stored = tc.of_rows(self.rows(tc.stored_query(mine, lo, hi)))
        plan = tc.plan(spans, batch, stored)
        if known and plan.learning.num_rows:  # only traces with spans stored have spans to fill
            plan.learned = tc.learned(plan.learning, known)
        if not plan.learned:
            return plan, set()
        return plan, set(range(lo // ru.HOUR_NS * ru.HOUR_NS, hi + 1, ru.HOUR_NS))

    def _learn(self, plan: tc.Plan, lo: int, hi: int) -> None:
        """Fill the spans stored before with the fields this write learned, moving them in
        the rollups keyed by those fields first."""
        if not plan.learned:
            return
        lo, hi = self._window(lo, hi)
        for project in sorted({key[0] for key in plan.learned}):
            learned = {t: v for (p, t), v in plan.learned.items() if p == project}
            for q in (*tc.move_queries(project, learned, lo, hi),
                      tc.update_query(project, learned, lo, hi)):  # fmt: skip
                self._command(q.sql, q.params)

    def _journal(self, hours: set[int]) -> None:
        """Record the hours this write is about to change in the rollups (none: a clean
        stop). The next record says this write ended; a crash leaves it the last one."""
        p = Params(CLICKHOUSE)
        listed = ", ".join(str(int(h)) for h in sorted(hours))  # numbers: no binding needed
        sql = (
            "INSERT INTO rollup_writes (writer, seq, hours) "
            f"VALUES ({p(self._writer)}, {p(time.time_ns())}, [{listed}])"
        )
        self._command(sql, p.values)
        self._journaled = bool(hours)

    def _repair(self) -> int:
        """Roll up again from their spans the hours of this writer's last write when it did
        not end (its record is the last, with hours); return how many hours."""
        p = Params(CLICKHOUSE)
        q = Query(
            f"SELECT hours FROM rollup_writes WHERE writer = {p(self._writer)} "
            "ORDER BY seq DESC LIMIT 1",
            p.values,
        )
        rows = self.rows(q)
        hours = {int(h) for h in rows[0][0]} if rows else set()
        if hours:
            self._rebuild(hours)
            self._journal(set())
        return len(hours)

    def _rebuild(self, hours: set[int]) -> None:
        """Roll these hours up again from their spans, in every rollup."""
        for sql in schema.rebuild_statements(sorted(hours), self._clock() - ru.MINUTE_KEEP_NS):
            self._command(sql)

    def _known_traces(self, traces: pa.Table) -> set[str]:
        """The trace ids of `traces` that have spans stored (the `traces` lookup table, by
        key)."""
        ids = tc.strings_sql(pc.unique(traces["trace_id"]))
        sql = f"SELECT DISTINCT trace_id FROM traces WHERE trace_id IN {ids}"
        return {str(row[0]) for row in self.rows(Query(sql, {}))}

    def write_scores(self, scores: Sequence[ScoreRow]) -> None:
        """Store scores; a score_id already stored is left as it is."""
        unique = list({s.score_id: s for s in reversed(scores)}.values())
        if not unique:
            return
        with self._writing():
            p = Params(CLICKHOUSE)
            ids = p([s.score_id for s in unique])
            q = Query(f"SELECT score_id FROM scores WHERE has({ids}, score_id)", p.values)
            stored = {row[0] for row in self.rows(q)}
            new = [s for s in unique if s.score_id not in stored]
            if new:
                self._insert("scores", scores_table(new))

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """Drop spans, payloads, scores (and, for every project, trace entries) older than
        `before_ns` (lightweight deletes; the TTL drops whole days on its own)."""
        p = Params(CLICKHOUSE)
        where = "" if project is None else f"project = {p(project)} AND "
        t = p(before_ns)
        with self._writing():
            (row,) = self.rows(
                Query(f"SELECT count() FROM spans WHERE {where}start_ns < {t}", p.values)
            )
            for table, col in (("spans", "start_ns"), ("payloads", "start_ns"),
                               ("scores", "created_ns")):  # fmt: skip
                self._command(f"DELETE FROM {table} WHERE {where}{col} < {t}", p.values)
            # a trace whose every span (of any project) is gone has no context left
            self._command(
                f"DELETE FROM trace_context WHERE {where}start_ns < {t} AND trace_id NOT IN "
                f"(SELECT trace_id FROM traces WHERE max_start_ns >= {t})",
                p.values,
            )
            if project is None:  # a trace's range may cover other projects' spans: keep it
                self._command(f"DELETE FROM traces WHERE max_start_ns < {t}", p.values)
            self._cut_rollups(project, before_ns)
        return int(row[0] or 0)

    def _cut_rollups(self, project: str | None, before_ns: int) -> None:
        """Drop the rollups' hours (minutes) before the cut; the one it cuts is rolled up
        again from its spans (as DuckDB's `RollupWriter.cut`)."""
        for table in schema.ROLLUPS:
            p = Params(CLICKHOUSE)
            where = "" if project is None else f"project = {p(project)} AND "
            t, grain = table.time_key, table.grain_ns
            cut = before_ns // grain * grain
            self._command(f"DELETE FROM {table.name} WHERE {where}{t} < {p(cut)}", p.values)
            if cut < before_ns:
                self._command(f"DELETE FROM {table.name} WHERE {where}{t} = {p(cut)}", p.values)
                cond = f"{where}start_ns >= {p(cut)} AND start_ns < {p(cut + grain)}"
                insert = ru.insert_sql("spans", cond, table, d=CLICKHOUSE)
                self._command(insert, p.values)

    def close(self) -> None:
        """Record a clean stop (after writes of its own), and release the client (chDB: the
        engine's files)."""
        with self._write_lock, contextlib.suppress(Exception):
            if self._journaled:
                self._journal(set())
        with self._write_lock, self._calling(), contextlib.suppress(Exception):
            self._client.close()
