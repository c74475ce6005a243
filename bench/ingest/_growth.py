"""How `store.write`'s cost moves as the DuckDB span store grows, statement by statement.

    python -m bench.ingest --store-only duckdb --growth 5 [--memory-mb 128]

Writes MILLIONS million spans of the workload into a fresh file in batches of 10k, as a
server taking 17,000 spans/s would (the spans' times advance 0.6 s a batch, new templates
each simulated minute), and prints per million: µs/span inside `write` and in each of its
parts (the Arrow tables, the replay check, the trace contexts, the spans' insert, the
rollups and their merges, the payloads, the COMMIT with the checkpoints it triggers), the
process's RSS and DuckDB's memory by tag. The parts are timed by wrapping the store's own
methods for the run (the same code runs, only timed); the soak asked where its writer's
cost grew from (issue 16).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.ingest._store_only import PER_REQUEST
from bench.ingest._workload import stamp, template

from watchkeeper.ingest import DEFAULT_STEPS, Settings, normalize
from watchkeeper.ingest._cost import Pricer
from watchkeeper.ingest._decode import decode
from watchkeeper.ingest._workers import Processed, columnar
from watchkeeper.model import ColumnBatch
from watchkeeper.store import _trace_context as tc
from watchkeeper.store import duckdb as wk_duckdb
from watchkeeper.store._arrow import arrow_tables, first_of_each_key
from watchkeeper.store._payload import PayloadCodec
from watchkeeper.store.duckdb import DuckDBStore

RATE = 17_000  # spans/s the simulated server takes (the soak's offered load)
REQUESTS_PER_BATCH = 20  # 10,240 spans: ingest.batch_max_spans's default, near enough
MINUTE_REQUESTS = RATE * 60 // PER_REQUEST  # new templates (spans of "now") this often


@contextlib.contextmanager
def _timed_parts(took: dict[str, float]) -> Iterator[None]:
    """The store's methods wrapped for the run so that `took` sums each part's seconds."""

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took[name] += time.perf_counter() - started

        return run

    roll_up = DuckDBStore._roll_up

    def rollups(self: DuckDBStore, cur: Any, source: str, fixed: set[int]) -> None:
        merges = (self._writes + 1) % self._compact_every == 0
        timed("rollups+merge" if merges else "rollups", roll_up)(self, cur, source, fixed)

    def store_new(self: DuckDBStore, cur: Any, source: str, fixed: set[int]) -> None:
        timed("spans", cur.execute)(f"INSERT INTO spans BY NAME SELECT * FROM {source}")
        self._roll_up(cur, source, fixed)

    @contextlib.contextmanager
    def transaction(self: DuckDBStore) -> Iterator[Any]:  # the store's, without its recovery
        with self._write_lock:
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            yield cur
            timed("commit", cur.execute)("COMMIT")

    patches = [
        (DuckDBStore, "_roll_up", rollups),
        (DuckDBStore, "_store_new", store_new),
        (DuckDBStore, "_transaction", transaction),
        (DuckDBStore, "_new_only", timed("replay check", DuckDBStore._new_only)),
        (
            DuckDBStore,
            "_store_payloads",
            staticmethod(timed("payloads", DuckDBStore._store_payloads)),
        ),
        (tc, "apply", timed("contexts", tc.apply)),
        (wk_duckdb, "arrow_tables", timed("arrow", arrow_tables)),
        (wk_duckdb, "first_of_each_key", timed("arrow", first_of_each_key)),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    for owner, name, new in patches:
        setattr(owner, name, new)
    try:
        yield
    finally:
        for owner, name, old in saved:
            setattr(owner, name, old)


def _batches(millions: int, now_ns: int) -> Iterator[ColumnBatch]:
    """Batches of the workload whose spans' times advance at RATE from `now_ns`."""
    pricer, codec = Pricer(), PayloadCodec()
    settings = Settings("default", False, pricer)
    bodies: list[bytes] = []
    requests = millions * 10**6 // PER_REQUEST + 1
    for no in range(0, requests, REQUESTS_PER_BATCH):
        batch = ColumnBatch()
        for i in range(no, no + REQUESTS_PER_BATCH):
            if i % MINUTE_REQUESTS == 0:
                bodies = [template(seed, PER_REQUEST, now_ns=now_ns) for seed in range(8)]
            decoded = decode(stamp(bodies[i % 8], i, 7), "protobuf")
            done = normalize(decoded.spans, settings, DEFAULT_STEPS)
            batch.extend(columnar(Processed(done.batch), codec).batch)
        now_ns += REQUESTS_PER_BATCH * PER_REQUEST * 10**9 // RATE
        yield batch


def _rss_mib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


def run(millions: int, memory_mb: int) -> None:
    """Write `millions` million spans and print each million's figures."""
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-growth-"))
    store = DuckDBStore(tmp / "spans.duckdb", memory_limit_mb=memory_mb)
    start_ns = time.time_ns() - millions * 10**6 * 10**9 // RATE  # ends about now
    took: dict[str, float] = defaultdict(float)
    print(f"growth: {millions}M spans at a simulated {RATE:,} spans/s, memory limit {memory_mb} MB")
    million, written, wall = 1, 0, 0.0
    try:
        with _timed_parts(took):
            for batch in _batches(millions, start_ns):
                started = time.perf_counter()
                written += store.write(batch)
                wall += time.perf_counter() - started
                if written >= 10**6:
                    _print(million, written, wall, took, store)
                    million, written, wall = million + 1, 0, 0.0
                    took.clear()
    finally:
        store.close()
    print(f"file: {tmp / 'spans.duckdb'}")


def _print(
    million: int, written: int, wall: float, took: dict[str, float], store: DuckDBStore
) -> None:
    per = 1e6 / written
    parts = " ".join(f"{k} {v * per:.1f}" for k, v in sorted(took.items(), key=lambda kv: -kv[1]))
    memory = store._con.execute(
        "SELECT tag, memory_usage_bytes // 1048576 FROM duckdb_memory() "
        "WHERE memory_usage_bytes >= 1048576 ORDER BY 2 DESC"
    ).fetchall()
    engine = ", ".join(f"{tag} {mib}" for tag, mib in memory)
    print(
        f"{million:3d}M  write {wall * per:5.1f} µs/span | {parts} | "
        f"RSS {_rss_mib()} MiB; DuckDB MiB: {engine or '-'}",
        flush=True,
    )
