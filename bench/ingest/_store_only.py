"""`store.write` alone: the bench workload decoded and normalized first (as the ingest workers
hand it over: `ColumnBatch`es of 10k spans, payloads packed), then written batch after batch
into a fresh store; no HTTP, no spool, no workers.

    python -m bench.ingest --store-only clickhouse --batches 50 [--profile]

Prints spans/s and µs/span inside `write` (wall, and CPU of all the process's threads), the
first, median and last batch's time, and a replay of the first batch (stores nothing).
`--profile`: the functions that took the most time inside `write` (cProfile, cumulative),
to see where the µs/span go.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.ingest._workload import Clocked, stamp, template

from watchkeeper.ingest import DEFAULT_STEPS, Settings, normalize
from watchkeeper.ingest._cost import Pricer
from watchkeeper.ingest._decode import decode
from watchkeeper.ingest._workers import Processed, columnar
from watchkeeper.model import ColumnBatch
from watchkeeper.store._payload import PayloadCodec

PER_REQUEST = 512
REQUESTS_PER_BATCH = 20  # 10,240 spans: ingest.batch_max_spans's default (10k), near enough


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The flags of this mode."""
    ap.add_argument(
        "--store-only",
        choices=["duckdb", "clickhouse"],
        help="no ingest: time store.write alone on --batches of 10,240 spans of the workload",
    )
    ap.add_argument("--batches", type=int, default=50, help="with --store-only")
    ap.add_argument("--profile", action="store_true", help="with --store-only: cProfile write")
    ap.add_argument(
        "--growth",
        type=int,
        metavar="MILLIONS",
        help="with --store-only duckdb: write that many million spans at a simulated 17k/s "
        "and print each million's cost by statement and the memory (bench/ingest/_growth.py)",
    )
    ap.add_argument("--memory-mb", type=int, default=128, help="with --growth: DuckDB's limit")


def batches(count: int, rate: int | None = None, start_ns: int = 0) -> Iterator[ColumnBatch]:
    """`count` batches of the workload (fresh trace ids each), as the writer receives them.
    With `rate`: the spans' times advance batch by batch as a server taking `rate` spans/s
    from `start_ns` would see them; without, they end about now."""
    pricer, codec = Pricer(), PayloadCodec()
    settings = Settings("default", False, pricer)
    at_ns = None if rate is None else start_ns
    bodies = [template(seed, PER_REQUEST, now_ns=at_ns) for seed in range(8)]
    clocked = None if rate is None else Clocked(bodies, at_ns)
    for no in range(0, count * REQUESTS_PER_BATCH, REQUESTS_PER_BATCH):
        if clocked is not None and rate is not None and no:
            bodies = clocked.moved(start_ns + no * PER_REQUEST * 10**9 // rate)
        batch = ColumnBatch()
        for i in range(no, no + REQUESTS_PER_BATCH):
            decoded = decode(stamp(bodies[i % len(bodies)], i, 7), "protobuf")
            done = normalize(decoded.spans, settings, DEFAULT_STEPS)
            batch.extend(columnar(Processed(done.batch), codec).batch)
        yield batch


def _open(engine: str, tmp: Path) -> Any:
    if engine == "clickhouse":
        from watchkeeper.store.clickhouse import ClickHouseStore

        return ClickHouseStore(f"chdb://{tmp / 'chdb'}")
    from watchkeeper.config import StoreConfig
    from watchkeeper.store.duckdb import DuckDBStore

    return DuckDBStore(tmp / "spans.duckdb", threads=StoreConfig().threads)  # as served


def run(engine: str, count: int, profile: bool) -> None:
    """Write `count` batches into a fresh `engine` store and print the figures."""
    work = list(batches(count))
    store = _open(engine, Path(tempfile.mkdtemp(prefix="wk-bench-store-")))
    prof = cProfile.Profile() if profile else None
    took, cpu = [], time.process_time()  # CPU of every thread (chDB's too): steadier when shared
    for batch in work:
        started = time.perf_counter()
        if prof is not None:
            prof.enable()
        written = store.write(batch)
        if prof is not None:
            prof.disable()
        took.append(time.perf_counter() - started)
        assert written == len(batch), f"{written} of {len(batch)} spans written"
    cpu = time.process_time() - cpu
    started = time.perf_counter()
    replayed = store.write(work[0])
    replay_s = time.perf_counter() - started
    store.close()
    spans, total = sum(len(b) for b in work), sum(took)
    mid = sorted(took)[len(took) // 2]
    print(
        f"store.write on {engine}: {spans:,} spans in {count} batches, {total:.1f} s: "
        f"{spans / total:,.0f} spans/s, {total / spans * 1e6:.1f} µs/span "
        f"(CPU {cpu / spans * 1e6:.1f}); batch first "
        f"{took[0]:.2f} s, median {mid:.2f} s, last {took[-1]:.2f} s; replay of the first "
        f"batch: {replayed} stored in {replay_s:.2f} s"
    )
    if prof is not None:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
