"""Metrics benchmark (issue 13, Performance): Watchkeeper beside a real Prometheus, same load.

    .venv/bin/python -m bench.metrics            # the issue's sizes (a few minutes)
    .venv/bin/python -m bench.metrics --quick    # 6 h of history, 3 rounds: a smoke run

1. History: `--hours` (24) of 10k series, one sample a minute (a counter of 5k series by
   service/instance/code, a histogram of 5k bucket series by service/instance/le), sent by
   remote-write to both servers.
2. Queries over that whole range, `--repeat` times each, p50/p95 on both:
   `sum by (service) (rate(bench_requests_total[5m]))` and `histogram_quantile(0.95,
   sum by (le, service) (rate(bench_request_duration_seconds_bucket[5m])))`.
3. Ingest with 100k active series: `--rounds` rounds of one sample per series, by
   remote-write (to both) then OTLP (to Watchkeeper: Prometheus 2.42 has no OTLP receiver);
   samples/s written, and ack -> queryable latency from probes (a sample sent on its own every
   0.25 s, then polled through each server's query API until it shows).
4. Bytes on disk per sample: Watchkeeper's metrics.duckdb once stopped (checkpointed), and
   Prometheus's TSDB as a snapshot of its head and blocks (the compacted form; its WAL, the
   write-ahead copy, printed apart).

One load at a time, each server in its own process on loopback (ports 19400, 19401, or
`WATCHKEEPER_BENCH_PORT` and the next); the machine is shared: its load is printed at the
start and the end.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench._machine import PACKAGES, load, versions
from bench.metrics import _servers as servers
from bench.metrics._encode import Labels, label_bytes, otlp_gauges, remote_write

WK = f"http://127.0.0.1:{servers.WATCHKEEPER_PORT}"
PROM = f"http://127.0.0.1:{servers.PROMETHEUS_PORT}"
RW_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
OTLP_HEADERS = {"Content-Type": "application/x-protobuf"}
PER_REQUEST = 2000  # series per remote-write request (Prometheus's max_samples_per_send)
SENDERS = 4
GOALS = (
    "goals (issue 13): written >= 200,000 samples/s with 100k active series; ack -> queryable "
    "p99 < 2 s; bytes/sample <= 2x Prometheus; each query p95 < 300 ms"
)
QUERIES = {
    "rate by service": "sum by (service) (rate(bench_requests_total[5m]))",
    "p95 by service": "histogram_quantile(0.95, sum by (le, service) "
    "(rate(bench_request_duration_seconds_bucket[5m])))",
}
LE = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf")


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def history_series() -> tuple[list[Labels], list[Labels]]:
    """10k series: 5k counters (10 services x 50 instances x 10 codes), 5k buckets."""
    counters, buckets = [], []
    for s in range(10):
        for i in range(50):
            base = (("service", f"svc-{s}"), ("instance", f"10.0.{s}.{i}:9100"))
            for c in range(10):
                counters.append(
                    (("__name__", "bench_requests_total"), *base, ("code", f"{200 + c}"))
                )
            for le in LE:
                buckets.append(
                    (("__name__", "bench_request_duration_seconds_bucket"), *base, ("le", le))
                )
    return counters, buckets


def send(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST until accepted (429/503 wait as asked, briefly)."""
    while True:
        r = client.post(url, content=body, headers=headers, timeout=120)
        if r.status_code in (200, 204):
            return
        if r.status_code in (429, 503):
            time.sleep(min(float(r.headers.get("Retry-After", "0.2")), 0.5))
            continue
        raise SystemExit(f"{url}: {r.status_code} {r.text[:300]}")


def history(hours: int, end_ms: int) -> Callable[[int, int], bytes]:
    """The body of one chunk of one round (a sample of each of its series at round r)."""
    counters, buckets = history_series()
    labels = [label_bytes(s) for s in counters + buckets]
    rnd = random.Random(7)
    rates = [rnd.uniform(0.5, 20) for _ in counters]
    shares = [min(1.0, (j % 10 + 1) / 9.5) for j in range(len(buckets))]  # cumulative le
    start = end_ms - hours * 3600_000

    def body(r: int, chunk: int) -> bytes:
        k = chunk * PER_REQUEST
        t = start + r * 60_000
        values = [rate * 60 * r for rate in rates] + [share * 600.0 * r for share in shares]
        return remote_write(labels[k : k + PER_REQUEST], t, values[k : k + PER_REQUEST])

    return body


HISTORY_CHUNKS = 10_000 // PER_REQUEST


def load_history(url: str, rounds: int, body: Callable[[int, int], bytes]) -> None:
    """Send every round (a thread per chunk of series, its rounds in order)."""

    def sender(chunk: int) -> None:
        with httpx.Client() as client:
            for r in range(rounds):
                send(client, url, body(r, chunk), RW_HEADERS)

    with ThreadPoolExecutor(HISTORY_CHUNKS) as pool:
        list(pool.map(sender, range(HISTORY_CHUNKS)))


def own_metric(name: str, url: str = WK) -> float:
    """A figure of Watchkeeper's own /metrics (0 when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def written(url: str = WK) -> float:
    """Samples Watchkeeper's metric store has written."""
    return own_metric("watchkeeper_metrics_samples_written_total", url)


def wait_compacted(timeout: float = 600) -> float:
    """Wait until no block that is over waits for compaction; seconds waited."""
    began = time.monotonic()
    while own_metric("watchkeeper_metrics_compaction_due"):
        if time.monotonic() - began > timeout:
            raise SystemExit(f"blocks still waiting for compaction after {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - began


def wait_written(target: float, timeout: float = 600) -> float:
    """Wait until Watchkeeper has written `target` samples; when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while written() < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"written {written():.0f} of {target:.0f} samples after {timeout} s")
        time.sleep(0.05)
    return time.perf_counter()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def query_times(
    url: str, expr: str, start_s: float, end_s: float, step: int, n: int, pid: int
) -> tuple[list[float], list[float]]:
    """Seconds of `n` range queries (each checked to return series), wall and the server's
    CPU (process `pid`: a figure other jobs on the machine weigh less on)."""
    walls, cpus = [], []
    with httpx.Client() as client:
        for _ in range(n):
            began, used = time.perf_counter(), cpu_seconds(pid)
            r = client.get(
                f"{url}/api/v1/query_range",
                timeout=120,
                params={"query": expr, "start": start_s, "end": end_s, "step": step},
            )
            walls.append(time.perf_counter() - began)
            cpus.append(cpu_seconds(pid) - used)
            if r.status_code != 200 or not r.json()["data"]["result"]:
                raise SystemExit(f"{url}: {expr}: {r.status_code} {r.text[:300]}")
    return walls, cpus


@dataclass
class Probes:
    """Ack -> queryable latencies of probe samples sent beside a load."""

    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def probe(write_url: str, query_url: str, name: str, otlp: bool, probes: Probes) -> None:
    """Every 0.25 s: one sample of `name` with a new value; time from its ack until the
    query API shows it."""
    seq = 0
    series = [label_bytes((("__name__", name),))]
    with httpx.Client() as client:
        while not probes.stop.is_set():
            seq += 1
            t_ms = int(time.time() * 1000)
            if otlp:
                send(client, write_url, otlp_gauges(name, [()], t_ms, [seq]), OTLP_HEADERS)
            else:
                send(client, write_url, remote_write(series, t_ms, [float(seq)]), RW_HEADERS)
            acked = time.perf_counter()
            while not probes.stop.is_set():
                r = client.get(f"{query_url}/api/v1/query", params={"query": name}, timeout=30)
                result = r.json()["data"]["result"] if r.status_code == 200 else []
                if result and float(result[0]["value"][1]) >= seq:
                    probes.latencies.append(time.perf_counter() - acked)
                    break
                time.sleep(0.01)
            probes.stop.wait(0.25)


def active_series(n: int, prefix: str) -> list[Labels]:
    """`n` series of 10 metrics (gauges of a fleet: 100 services x n/1000 instances)."""
    per_metric = n // 10
    out = []
    for m in range(10):
        for k in range(per_metric):
            out.append(
                (
                    ("__name__", f"{prefix}_metric_{m}"),
                    ("service", f"svc-{k % 100}"),
                    ("instance", f"host-{k // 100}:9100"),
                )
            )
    return out


def ingest(
    write_url: str,
    query_url: str,
    bodies: Sequence[Sequence[bytes]],
    headers: dict[str, str],
    samples: int,
    otlp: bool,
    wait: Callable[[], float] | None,
) -> dict[str, Any]:
    """Send the rounds (a sender per share of the chunks, rounds in order) with probes beside."""
    probes = Probes()
    name = "bench_probe_otlp" if otlp else "bench_probe"
    prober = threading.Thread(target=probe, args=(write_url, query_url, name, otlp, probes))
    prober.start()
    chunks = len(bodies[0])

    def sender(k: int) -> None:
        with httpx.Client() as client:
            for round_bodies in bodies:
                for c in range(k, chunks, SENDERS):
                    send(client, write_url, round_bodies[c], headers)

    began = time.perf_counter()
    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(sender, range(SENDERS)))
    acked = time.perf_counter()
    done = wait() if wait is not None else acked
    probes.stop.wait(1.0)  # a few probes after the load, too
    probes.stop.set()
    prober.join()
    lat = probes.latencies or [math.nan]
    return {
        "acked/s": samples / (acked - began),
        "written/s": samples / (done - began),
        "probes": len(probes.latencies),
        "p50": pct(lat, 0.5),
        "p99": pct(lat, 0.99),
        "max": max(lat),
    }


def _row(label: str, r: dict[str, Any]) -> str:
    return (
        f"  {label:<34} acked {r['acked/s']:>10,.0f}/s  written {r['written/s']:>10,.0f}/s  "
        f"ack->queryable p50 {r['p50']:.3f} s p99 {r['p99']:.3f} s max {r['max']:.3f} s "
        f"({r['probes']} probes)"
    )


def main() -> None:
    """Run the four parts and print the figures beside the goals."""
    ap = argparse.ArgumentParser(prog="python -m bench.metrics")
    ap.add_argument("--quick", action="store_true", help="6 h of history, 3 ingest rounds")
    ap.add_argument("--hours", type=int, default=24, help="hours of history for the queries")
    ap.add_argument("--series", type=int, default=100_000, help="active series of the ingest")
    ap.add_argument("--rounds", type=int, default=10, help="ingest rounds (a sample per series)")
    ap.add_argument("--repeat", type=int, default=20, help="runs of each query")
    ap.add_argument("--step", type=int, default=60, help="query_range step, seconds")
    args = ap.parse_args()
    if args.quick:
        args.hours, args.rounds, args.repeat = 6, 3, 10
    print(versions((*PACKAGES, "numpy", "promql-parser")))
    print(f"{load()} at the start (the machine is shared: other jobs run beside this one)")
    print(GOALS)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        work = Path(tmp)
        wk, prom = servers.start_watchkeeper(work), servers.start_prometheus(work)
        try:
            run(args, work, wk, prom)
        finally:
            servers.stop(wk)
            servers.stop(prom)
    print(f"{load()} at the end")


def run(args: argparse.Namespace, work: Path, wk: Any, prom: Any) -> None:
    """The four parts against the two running servers."""
    end_ms = (int(time.time()) - 900) // 60 * 60_000  # history ends 15 min ago
    rounds = args.hours * 60 + 1
    body = history(args.hours, end_ms)
    history_samples = rounds * 10_000
    print(
        f"\n1. history: {args.hours} h of 10,000 series at 1/min = {history_samples:,} samples "
        f"(request bodies built while sending)"
    )
    for name, url in (("watchkeeper", WK), ("prometheus", PROM)):
        began = time.perf_counter()
        load_history(f"{url}/api/v1/write", rounds, body)
        done = wait_written(history_samples) if name == "watchkeeper" else time.perf_counter()
        seconds = done - began
        print(
            f"  {name:<12} {history_samples / seconds:>10,.0f} samples/s written ({seconds:.1f} s)"
        )
        if name == "watchkeeper":  # as Prometheus cuts its head into blocks, a step at a time
            print(f"  {'':<12} closed blocks compacted {wait_compacted():.1f} s later")

    end_s, start_s = end_ms / 1000, end_ms / 1000 - args.hours * 3600
    points = int((end_s - start_s) // args.step) + 1
    print(
        f"\n2. queries over {args.hours} h, step {args.step}s ({points} points), "
        f"{args.repeat} runs each (ms)"
    )
    for label, expr in QUERIES.items():
        for name, url, pid in (
            ("watchkeeper", f"{WK}/prometheus", wk.pid),
            ("prometheus", PROM, prom.pid),
        ):
            times, cpus = query_times(url, expr, start_s, end_s, args.step, args.repeat, pid)
            print(
                f"  {label:<16} {name:<12} p50 {statistics.median(times) * 1e3:>8.1f}  "
                f"p95 {pct(times, 0.95) * 1e3:>8.1f}  "
                f"(server CPU p50 {statistics.median(cpus) * 1e3:>6.0f})"
            )

    n = args.series
    print(
        f"\n3. ingest: {n:,} active series, {args.rounds} rounds = {n * args.rounds:,} samples "
        f"per way in; {SENDERS} senders, {PER_REQUEST} series a request"
    )
    now_ms = int(time.time() * 1000) - args.rounds * 15_000
    rw_series = [label_bytes(s) for s in active_series(n, "rw")]
    rw = [
        [
            remote_write(
                rw_series[k : k + PER_REQUEST],
                now_ms + r * 15_000,
                [float(r + k % 7)] * len(rw_series[k : k + PER_REQUEST]),
            )
            for k in range(0, n, PER_REQUEST)
        ]
        for r in range(args.rounds)
    ]
    before = written()
    total = n * args.rounds
    ours = ingest(
        f"{WK}/api/v1/write",
        f"{WK}/prometheus",
        rw,
        RW_HEADERS,
        total,
        False,
        lambda: wait_written(before + total),
    )
    print(_row("remote-write -> watchkeeper", ours))
    theirs = ingest(f"{PROM}/api/v1/write", PROM, rw, RW_HEADERS, total, False, None)
    print(_row("remote-write -> prometheus", theirs))
    del rw
    otlp_series = active_series(n, "otlp")
    otlp = []
    for r in range(args.rounds):
        bodies = []
        for k in range(0, n, PER_REQUEST):
            chunk = otlp_series[k : k + PER_REQUEST]
            name = dict(chunk[0])["__name__"]  # a chunk holds one metric (n // 10 series each)
            points = [tuple(kv for kv in s if kv[0] != "__name__") for s in chunk]
            bodies.append(otlp_gauges(name, points, now_ms + r * 15_000, [float(r)] * len(chunk)))
        otlp.append(bodies)
    before = written()
    ours_otlp = ingest(
        f"{WK}/v1/metrics",
        f"{WK}/prometheus",
        otlp,
        OTLP_HEADERS,
        total,
        True,
        lambda: wait_written(before + total),
    )
    print(_row("OTLP -> watchkeeper", ours_otlp))
    print("  OTLP -> prometheus               n/a (Prometheus 2.42 has no OTLP receiver)")
    del otlp

    print("\n4. bytes on disk per sample")
    snap = httpx.post(f"{PROM}/api/v1/admin/tsdb/snapshot", timeout=300).json()["data"]["name"]
    prom_samples = history_samples + total + 0  # probes are a few hundred: left out
    prom_snapshot = servers.size(work / "tsdb" / "snapshots" / snap)
    prom_wal = servers.size(work / "tsdb" / "wal")
    servers.stop(wk)
    ours_samples = history_samples + 2 * total
    ours_bytes = servers.size(work / "wk" / "metrics.duckdb")
    print(
        f"  watchkeeper  {ours_bytes / ours_samples:6.2f} bytes/sample "
        f"({ours_bytes / 2**20:,.1f} MiB metrics.duckdb, {ours_samples:,} samples)"
    )
    print(
        f"  prometheus   {prom_snapshot / prom_samples:6.2f} bytes/sample "
        f"({prom_snapshot / 2**20:,.1f} MiB TSDB snapshot, {prom_samples:,} samples; "
        f"its WAL {prom_wal / 2**20:,.1f} MiB besides)"
    )


if __name__ == "__main__":
    main()
