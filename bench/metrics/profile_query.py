"""In-process profile of the two benchmark queries (issue 13): a metric store holding
`--hours` of the benchmark's 10k history series (one sample a minute, written round by
round as the server writes them), then each query evaluated `--repeat` times, with the
time of each step: the store's read, the evaluation, the answer's JSON.

    .venv/bin/python -m bench.metrics.profile_query --hours 24
    .venv/bin/python -m bench.metrics.profile_query --hours 24 --cprofile   # by function

The store is kept in `--dir` (built once per `--hours`): later runs only query it. No
server and no network: wall and CPU time of this process (DuckDB's threads included).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
from pathlib import Path

import numpy as np
from bench._machine import load
from bench.metrics.__main__ import QUERIES, history_series

from watchkeeper.query import Engine, range_result
from watchkeeper.store.metrics import MetricsStore, SampleColumns

_T0 = 1_700_000_000_000 // 60_000 * 60_000
PROJECT = "default"  # the server's without keys: `watchkeeper serve --data-dir` can serve the file


def build(path: Path, hours: int) -> None:
    """The history of part 1 of the benchmark, written a round (10k samples) at a time."""
    counters, buckets = history_series()
    series = counters + buckets
    rng = np.random.default_rng(7)
    rates = rng.uniform(0.5, 20, len(counters))
    shares = np.minimum(1.0, (np.arange(len(buckets)) % 10 + 1) / 9.5)
    store = MetricsStore(path, max_series_per_project=10**6)
    index = np.arange(len(series), dtype=np.int64)
    for r in range(hours * 60 + 1):
        values = np.concatenate((rates * 60 * r, shares * 600.0 * r))
        store.write_columns(
            PROJECT,
            SampleColumns(
                series,
                index,
                np.full(len(series), _T0 + r * 60_000, np.int64),
                values,
                np.zeros(len(series), np.bool_),
                np.zeros(len(series), np.bool_),
            ),
        )
    store.compact()  # what the writer does a step a second: every block that is over
    store.close()


def main() -> None:
    """Build the store if needed, then time each query and its steps."""
    ap = argparse.ArgumentParser(prog="python -m bench.metrics.profile_query")
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--step", type=int, default=60, help="seconds")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/wk-profile-query"))
    ap.add_argument("--cprofile", action="store_true", help="print the top functions")
    args = ap.parse_args()
    path = args.dir / f"metrics-{args.hours}h.duckdb"
    if not path.exists():
        args.dir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        build(path, args.hours)
        print(f"built {path} in {time.perf_counter() - began:.1f} s")
    print(f"load before: {load()}")
    store = MetricsStore(path, max_series_per_project=10**6)
    engine = Engine(store)
    steps = np.arange(_T0, _T0 + args.hours * 3_600_000 + 1, args.step * 1000, dtype=np.int64)
    for label, expr in QUERIES.items():
        walls, cpus, reads, encodes = [], [], [], []
        profile = cProfile.Profile() if args.cprofile else None
        for _ in range(args.repeat):
            read = _timed_reads(store)
            began, cpu = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            value = engine.evaluate(PROJECT, expr, steps)
            t1 = time.perf_counter()
            answer = {"status": "success", "data": range_result(value, steps)}
            body = json.dumps(answer, separators=(",", ":")).encode()  # as the server's
            if profile is not None:
                profile.disable()
            walls.append(time.perf_counter() - began)
            cpus.append(time.process_time() - cpu)
            reads.append(sum(read))
            encodes.append(time.perf_counter() - t1)
        ms = {name: statistics.median(v) * 1e3 for name, v in
              (("wall", walls), ("CPU", cpus), ("read", reads), ("answer", encodes))}  # fmt: skip
        print(f"{label:<16} wall p50 {ms['wall']:7.1f} ms p95 {np.percentile(walls, 95) * 1e3:7.1f}"
              f"  CPU p50 {ms['CPU']:7.1f}  of which read p50 {ms['read']:6.1f}, answer p50 "
              f"{ms['answer']:6.1f} ({len(body):,} bytes)")  # fmt: skip
        if profile is not None:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    store.close()
    print(f"load after: {load()}")


_plain = MetricsStore.select_block


def _timed_reads(store: MetricsStore) -> list[float]:
    """Wrap the store's read to record its wall time (per call) into the list returned."""
    spent: list[float] = []

    def timed(*args: object, **kwargs: object) -> object:
        began = time.perf_counter()
        out = _plain(store, *args, **kwargs)  # type: ignore[arg-type]
        spent.append(time.perf_counter() - began)
        return out

    store.select_block = timed  # type: ignore[method-assign]
    return spent


if __name__ == "__main__":
    main()
