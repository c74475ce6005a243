"""How `store.write`'s cost moves as the DuckDB span store grows, statement by statement.

    python -m bench.ingest --store-only duckdb --growth 5 [--memory-mb 128]

Writes MILLIONS million spans of the workload into a fresh file in batches of 10k, as a
server taking 17,000 spans/s would (the spans' times advance 0.6 s a batch), and prints per
million: µs/span inside `write` and in each of its parts (the Arrow tables, the replay
check, the trace contexts, the spans' insert, the rollups and their merges, the payloads,
the COMMIT with the checkpoints it triggers: the store's `WRITE_PARTS`, through its
`write_timer`), the longest write, merge and commit, the process's RSS and DuckDB's memory
by tag. The soak asked where its writer's cost grew from (issue 16).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from bench.ingest._store_only import PER_REQUEST, REQUESTS_PER_BATCH, batches

from watchkeeper.config import StoreConfig
from watchkeeper.store.duckdb import WRITE_PARTS, DuckDBStore

RATE = 17_000  # spans/s the simulated server takes (the soak's offered load)


def _summing(
    took: dict[str, float], longest: dict[str, float]
) -> Callable[[str], AbstractContextManager[object]]:
    """A store `write_timer` that sums each part's seconds into `took`, and keeps each
    part's longest in `longest`."""

    @contextlib.contextmanager
    def timer(part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            took[part] += seconds
            longest[part] = max(longest[part], seconds)

    return timer


def _rss_mib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


def run(millions: int, memory_mb: int) -> None:
    """Write `millions` million spans and print each million's figures."""
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-growth-"))
    store = DuckDBStore(
        tmp / "spans.duckdb", memory_limit_mb=memory_mb, threads=StoreConfig().threads
    )  # as the server opens it
    took: dict[str, float] = defaultdict(float)
    longest: dict[str, float] = defaultdict(float)
    store.write_timer = _summing(took, longest)
    count = millions * 10**6 // (PER_REQUEST * REQUESTS_PER_BATCH) + 1
    start_ns = time.time_ns() - millions * 10**6 * 10**9 // RATE  # ends about now
    print(f"growth: {millions}M spans at a simulated {RATE:,} spans/s, memory limit {memory_mb} MB")
    million, written, wall = 1, 0, 0.0
    try:
        for batch in batches(count, RATE, start_ns):
            started = time.perf_counter()
            written += store.write(batch)
            seconds = time.perf_counter() - started
            wall += seconds
            longest["write"] = max(longest["write"], seconds)
            if written >= 10**6:
                _print(million, written, wall, took, longest, store)
                million, written, wall = million + 1, 0, 0.0
                took.clear()
                longest.clear()
    finally:
        store.close()
    print(f"file: {tmp / 'spans.duckdb'}")


def _print(
    million: int,
    written: int,
    wall: float,
    took: dict[str, float],
    longest: dict[str, float],
    store: DuckDBStore,
) -> None:
    per = 1e6 / written
    parts = " ".join(f"{k} {took[k] * per:.1f}" for k in WRITE_PARTS if k in took)
    memory = store._con.execute(
        "SELECT tag, memory_usage_bytes // 1048576 FROM duckdb_memory() "
        "WHERE memory_usage_bytes >= 1048576 ORDER BY 2 DESC"
    ).fetchall()
    engine = ", ".join(f"{tag} {mib}" for tag, mib in memory)
    print(
        f"{million:3d}M  write {wall * per:5.1f} µs/span | {parts} | longest: write "
        f"{longest['write']:.2f} s, merge {longest['merge']:.2f}, commit {longest['commit']:.2f} | "
        f"RSS {_rss_mib()} MiB; DuckDB MiB: {engine or '-'}",
        flush=True,
    )
