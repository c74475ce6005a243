"""In-process profile of the metric ingest's hot path (issue 13): remote-write requests of
2,000 series each, over `--series` active series, through each step the server runs
(snappy, decode at the door, store write), in µs per sample. The writer takes the door's
decode of the same body (`Handoff`), so nothing is decoded twice.

    .venv/bin/python -m bench.metrics.profile_ingest --series 100000 --rounds 3

No server and no network: the figures are CPU time (the process's, DuckDB's threads too) per
step, so other jobs on the machine weigh less on them; their sum bounds the
written rate of one server process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench._machine import load
from bench.metrics.__main__ import PER_REQUEST, active_series
from bench.metrics._encode import label_bytes, remote_write

from watchkeeper.ingest._remote_write import LabelCache, decode_remote_write, unsnappy
from watchkeeper.store.metrics import MetricsStore, SampleColumns


def main() -> None:
    """Run the rounds and print µs per sample of each step."""
    ap = argparse.ArgumentParser(prog="python -m bench.metrics.profile_ingest")
    ap.add_argument("--series", type=int, default=100_000, help="active series")
    ap.add_argument("--rounds", type=int, default=3, help="a sample per series per round")
    ap.add_argument(
        "--group",
        type=int,
        default=1,
        help="requests per store write (the writer takes up to 16 when it is behind)",
    )
    args = ap.parse_args()
    series = [label_bytes(s) for s in active_series(args.series, "bench")]
    chunks = [series[i : i + PER_REQUEST] for i in range(0, len(series), PER_REQUEST)]
    t0 = 1_700_000_000_000
    # Round 0 creates the series; the rounds after it are the steady state of issue 13.
    rounds: list[dict[str, float]] = [defaultdict(float), defaultdict(float)]
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = MetricsStore(Path(tmp) / "metrics.duckdb", max_series_per_project=10**6)
        cache = LabelCache()  # as the server keeps one for the door and the writer
        for r in range(args.rounds):
            spent = rounds[min(r, 1)]
            bodies = [remote_write(c, t0 + r * 15_000, [float(r)] * len(c)) for c in chunks]
            for g in range(0, len(bodies), args.group):
                started = time.process_time()
                raws = [unsnappy(body, 64 << 20) for body in bodies[g : g + args.group]]
                t1 = time.process_time()
                decoded = [decode_remote_write(raw, cache) for raw in raws]  # at the door
                t2 = time.process_time()
                parts = [d.columns for d in decoded if d.columns is not None]
                store.write_columns("bench", SampleColumns.concat(parts))
                t3 = time.process_time()
                spent["snappy"] += t1 - started
                spent["decode"] += t2 - t1
                spent["store write"] += t3 - t2
        store.close()
    for title, spent, n in (
        ("round 0 (new series)", rounds[0], 1),
        ("later rounds", rounds[1], args.rounds - 1),
    ):
        if n:
            report(title, spent, args.series * n)
    print(f"load after: {load()}")


def report(title: str, spent: dict[str, float], total: int) -> None:
    """µs per sample of each step, and the rate their sum allows."""
    whole = sum(spent.values())
    print(f"{title}, {total:,} samples:")
    for step, s in spent.items():
        print(f"{step:>16}: {s / total * 1e6:7.2f} µs/sample ({s / whole:5.1%})")
    print(f"{'all':>16}: {whole / total * 1e6:7.2f} µs/sample -> {total / whole:,.0f} samples/s")


if __name__ == "__main__":
    main()
