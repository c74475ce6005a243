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
import cProfile
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench._machine import load
from bench.metrics.__main__ import PER_REQUEST, active_series
from bench.metrics._encode import label_bytes, otlp_gauges, remote_write

from watchkeeper.ingest._gc import tune_gc
from watchkeeper.ingest._metrics_decode import DecodedMetrics, PointLabels, decode_metrics
from watchkeeper.ingest._remote_write import LabelCache, decode_remote_write, unsnappy
from watchkeeper.malloc import tune_malloc
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
    ap.add_argument("--cprofile", action="store_true", help="print the store write's top functions")
    ap.add_argument("--otlp", action="store_true", help="OTLP gauges instead of remote-write")
    args = ap.parse_args()
    profile = cProfile.Profile() if args.cprofile else None
    labels = active_series(args.series, "bench")
    series = [label_bytes(s) for s in labels]
    chunks = [series[i : i + PER_REQUEST] for i in range(0, len(series), PER_REQUEST)]
    points = [
        [s[1:] for s in labels[i : i + PER_REQUEST]] for i in range(0, len(labels), PER_REQUEST)
    ]
    names = [labels[i][0][1] for i in range(0, len(labels), PER_REQUEST)]
    t0 = 1_700_000_000_000
    # Round 0 creates the series; the rounds after it are the steady state of issue 13.
    rounds: list[dict[str, float]] = [defaultdict(float), defaultdict(float)]
    print(f"load before: {load()}")
    tune_gc()  # as the server does when ingest starts
    tune_malloc()
    with tempfile.TemporaryDirectory() as tmp:
        store = MetricsStore(Path(tmp) / "metrics.duckdb", max_series_per_project=10**6)
        cache = LabelCache()  # as the server keeps one for the door and the writer
        otlp_labels = PointLabels()  # the same, of OTLP
        for r in range(args.rounds):
            spent = rounds[min(r, 1)]
            t = t0 + r * 15_000
            if args.otlp:  # a chunk holds one metric, as in bench.metrics
                bodies = [
                    otlp_gauges(name, p, t, [float(r)] * len(p))
                    for name, p in zip(names, points, strict=True)
                ]
            else:
                bodies = [remote_write(c, t, [float(r)] * len(c)) for c in chunks]
            for g in range(0, len(bodies), args.group):
                started = time.process_time()
                group = bodies[g : g + args.group]
                raws = group if args.otlp else [unsnappy(body, 64 << 20) for body in group]
                t1 = time.process_time()
                decoded = [_decode(raw, cache, otlp_labels, args.otlp) for raw in raws]  # the door
                t2 = time.process_time()
                parts = [_columns(d) for d in decoded]
                if profile is not None:
                    profile.enable()
                store.write_columns("bench", SampleColumns.concat(parts))
                if profile is not None:
                    profile.disable()
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
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    print(f"load after: {load()}")


def _decode(raw: bytes, cache: LabelCache, points: PointLabels, otlp: bool) -> DecodedMetrics:
    return decode_metrics(raw, "protobuf", points) if otlp else decode_remote_write(raw, cache)


def _columns(decoded: DecodedMetrics) -> SampleColumns:
    """What the writer stores of a decoded request (OTLP's samples as columns)."""
    if decoded.columns is not None:
        return decoded.columns
    return SampleColumns.from_samples(decoded.samples)


def report(title: str, spent: dict[str, float], total: int) -> None:
    """µs per sample of each step, and the rate their sum allows."""
    whole = sum(spent.values())
    print(f"{title}, {total:,} samples:")
    for step, s in spent.items():
        print(f"{step:>16}: {s / total * 1e6:7.2f} µs/sample ({s / whole:5.1%})")
    print(f"{'all':>16}: {whole / total * 1e6:7.2f} µs/sample -> {total / whole:,.0f} samples/s")


if __name__ == "__main__":
    main()
