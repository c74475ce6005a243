"""Ingest benchmark: realistic OTLP protobuf spans into a real `watchkeeper serve` process.

    .venv/bin/python -m bench.ingest              # 1,000,000 spans, as fast as acknowledged
    .venv/bin/python -m bench.ingest --quick      # 100,000 spans
    .venv/bin/python -m bench.ingest --offer 2    # offered at 2x the written rate (measured
                                                  # first on 1M spans): the lag budget holds
    .venv/bin/python -m bench.ingest --soak 30m   # 30 min at 0.7x the written rate, dashboard
                                                  # queries every 5 s, a line per minute
    .venv/bin/python -m bench.ingest --workers 1  # one decode/normalize/compress worker (default 3)
    .venv/bin/python -m bench.ingest --engine clickhouse  # the span store on ClickHouse (chDB);
                                                  # --engine both: both, side by side
    .venv/bin/python -m bench.ingest --store-only clickhouse --batches 50  # store.write alone
    .venv/bin/python -m bench.ingest --store-only duckdb --growth 5  # its cost by statement,
                                                  # per million spans, as the file grows

Prints the versions that matter and the machine's load, the baseline of issue 16 beside the
figures: sustained throughput (acknowledged, and written to the store), the lag from a
request's acknowledgement to its spans being queryable (p50/p99, from probe traces polled
through the query API and from the server's own lag histogram), the server's CPU per span
and its peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from bench._machine import load, versions
from bench.ingest import _engines, _store_only
from bench.ingest._soak import Soak
from bench.ingest._workload import Clocked, stamp, template

from watchkeeper.config import IngestConfig

_PROTOBUF = {"Content-Type": "application/x-protobuf"}
#: How often the workload's templates move to now (`Clocked`: ~30 ms for the 8 of them).
RETIME_S = 2.0
#: Issue 16's figures for main at 4f0fe53 (DuckDB 2.0.1, 1M spans, 4 senders): two runs
#: beside another test job, one on an idle machine; and the goals.
BASELINE = (
    "baseline (issue 16, main at 4f0fe53): written 12,106 / 11,464 / 18,667 (idle) spans/s; "
    "ack -> queryable p99 40.0 / 42.9 / 22.9 s; peak RSS 1,467 / 1,417 / 1,395 MiB"
)
GOALS = (
    "goals: written >= 20,000 spans/s; p99 < 2 s below the written rate; "
    "RSS < 600 MiB at peak, < 400 MiB steady (with its workers)"
)


@dataclass
class Stats:
    """What the senders and probes saw."""

    acked_spans: int = 0
    requests: int = 0
    overloaded: int = 0
    errors: int = 0
    probe_lags: list[float] = field(default_factory=list)
    peak_rss: int = 0  # the server and its workers
    peak_main_rss: int = 0  # the server process alone
    peak_pss: int = 0  # the server and its workers, shared pages shared out
    peak_file: int = 0  # of peak_rss, the pages of mapped files (the libraries' code)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_server(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "watchkeeper", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir)]
    log = (data_dir.parent / "server.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited; see {data_dir.parent / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not become ready")


def _sender(
    url: str,
    bodies: list[bytes],
    next_no: list[int],
    total_requests: int,
    run_id: int,
    spans_per_request: int,
    stats: Stats,
    interval: float,
) -> None:
    next_at = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        while True:
            if interval:  # paced: this sender's share of --rate
                next_at += interval
                time.sleep(max(next_at - time.perf_counter(), 0.0))
            with stats.lock:
                no = next_no[0]
                next_no[0] += 1
            if no >= total_requests:
                return
            body = stamp(bodies[no % len(bodies)], no, run_id)
            while True:
                r = client.post(f"{url}/v1/traces", content=body, headers=_PROTOBUF)
                if r.status_code in (429, 503):
                    with stats.lock:
                        stats.overloaded += 1
                    time.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                break
            with stats.lock:
                stats.requests += 1
                if r.status_code == 200:
                    stats.acked_spans += spans_per_request
                else:
                    stats.errors += 1


def _probe(
    url: str, run_id: int, stop: threading.Event, stats: Stats, soak: Soak | None = None
) -> None:
    """Every half second: send one small trace of now, poll the query API until it is
    there."""
    no = 0
    with httpx.Client(timeout=30) as client:
        while not stop.wait(0.5):
            no += 1
            body = stamp(template(10_000, 4, service="bench-probe"), no, run_id ^ 0x7FFFFFFF)
            r = client.post(f"{url}/v1/traces", content=body, headers=_PROTOBUF)
            if r.status_code != 200:
                continue
            acked = time.perf_counter()
            trace_id = (run_id ^ 0x7FFFFFFF).to_bytes(4, "big").hex() + f"{no:016x}" + "00000000"
            while not stop.is_set():
                if client.get(f"{url}/api/v1/traces/{trace_id}").status_code == 200:
                    lag = time.perf_counter() - acked
                    with stats.lock:
                        stats.probe_lags.append(lag)
                    if soak is not None:
                        soak.add_lag(lag)
                    break
                time.sleep(0.05)  # gentle: the probe must not load the store itself


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by the server process and by its children."""
    proc = psutil.Process(pid)

    def used(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    kids = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            kids += used(child)
    return used(proc), kids


@dataclass(frozen=True)
class Memory:
    """The server and its workers' memory at one moment, in bytes."""

    rss: int  # summed over the processes
    main: int  # the server process alone
    pss: int  # summed over the processes, shared pages shared out
    file: int  # of `rss`, the pages of mapped files (summed like it)


def _memory(pid: int) -> Memory:
    """The memory of the server and its workers.

    Summed RSS counts the pages they share (the interpreter, the libraries) once per
    process; PSS shares them out, so the tree's PSS is what the tree adds to the machine.
    The file pages are the libraries' code and data the processes touched, and the pages
    around each fault the kernel maps along when they sit in its page cache: how many
    depends on the machine's state, not on the server. At its peak, the server process
    alone mapped 178 MiB of them in runs right after a fresh clone and `scripts/setup.sh
    dev`, and 141 MiB in runs of the same venv minutes later, its other memory within 7 MiB
    (2026-12-08): the summed RSS at peak went from 609-613 to 566-574 MiB.
    """
    proc = psutil.Process(pid)
    tree = [proc, *proc.children(recursive=True)]
    main = proc.memory_info().rss
    rss = main + sum(c.memory_info().rss for c in tree[1:])
    pss = file = 0
    for p in tree:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("RssFile:"):
                    file += int(line.split()[1]) * 1024
    return Memory(rss, main, pss, file)


def _watch_rss(pid: int, stop: threading.Event, stats: Stats) -> None:
    while not stop.wait(0.2):
        try:
            m = _memory(pid)
        except psutil.Error:
            return
        if m.rss > stats.peak_rss:
            stats.peak_rss, stats.peak_file = m.rss, m.file
        stats.peak_main_rss = max(stats.peak_main_rss, m.main)
        stats.peak_pss = max(stats.peak_pss, m.pss)


WRITE_SECONDS = "watchkeeper_ingest_batch_write_seconds"
SECOND_OR_LESS = f'{WRITE_SECONDS}_bucket{{le="1.0"}}'  # the writes of a second or less


def _scrape(url: str) -> str:
    """The server's `/metrics` text: one scrape, so figures read from it agree."""
    return httpx.get(f"{url}/metrics", timeout=30).text


def _metric(url: str, name: str) -> float:
    return _sample(_scrape(url), name)


def _sample(text: str, name: str) -> float:
    """The sum of the samples of `name` (or of the one sample `name{labels}`) in `text`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _slow_writes(url: str) -> float:
    """The store writes over a second so far; count and bucket from one scrape (from two,
    a write between them made a minute's figure -1)."""
    text = _scrape(url)
    return _sample(text, f"{WRITE_SECONDS}_count") - _sample(text, SECOND_OR_LESS)


def _histogram_quantiles(text: str, name: str, qs: tuple[float, ...]) -> list[float | None]:
    """Quantiles `qs` of histogram `name` in a scrape's `text` (linear inside a bucket)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return [None for _ in qs]
    total = buckets[-1][1]
    out: list[float | None] = []
    for q in qs:
        rank, lo, below = q * total, 0.0, 0.0
        for le, count in buckets:
            if count >= rank:
                frac = 0.0 if count == below else (rank - below) / (count - below)
                out.append(le if le == float("inf") else lo + (le - lo) * frac)
                break
            lo, below = le, count
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "n/a"
    return "over the top bucket" if v == float("inf") else f"{v * 1000:.0f} ms"


@dataclass
class Timing:
    """When the run started, when the last request was acknowledged, and written."""

    started: float
    acked_at: float
    written_at: float


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 spans")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--spans-per-request", type=int, default=512)
    ap.add_argument("--rate", type=float, default=0, help="spans/s to offer (0 = flat out)")
    ap.add_argument(
        "--offer",
        type=float,
        help="offer this multiple of the written rate (measured first, 300k spans flat out)",
    )
    ap.add_argument(
        "--soak", help="run this long (e.g. 30m, 90s) at --offer (default 0.7) x the written rate"
    )
    ap.add_argument("--url", help="an already running server (default: start one)")
    ap.add_argument(
        "--workers", type=int, help="the server's ingest.workers (default: its config default)"
    )
    ap.add_argument("--engine", choices=[*_engines.ENGINES, "both"], default="duckdb")
    ap.add_argument(
        "--in-process",
        choices=["null", "duckdb", "clickhouse"],
        help="no server: drive IngestService directly with this store (null = count only)",
    )
    _store_only.add_arguments(ap)
    return ap.parse_args()


def _drive(
    url: str,
    args: argparse.Namespace,
    spans: int,
    pid: int | None,
    rate: float = 0.0,
    soak: Soak | None = None,
) -> tuple[Stats, Timing]:
    """Send the workload with the senders, probe lag, watch RSS; wait until all is written."""
    per = args.spans_per_request
    total_requests = -(-spans // per)
    run_id = int(time.time() * 1000) & 0x7FFFFFFF
    bodies = [template(seed, per) for seed in range(8)]
    offered = f"{rate:,.0f} spans/s offered" if rate else "flat out"
    print(
        f"workload: {total_requests} requests x {per} spans, {args.senders} senders, {offered}, "
        f"{sum(map(len, bodies)) / len(bodies) / per:.0f} bytes/span on the wire"
    )
    written_before = _metric(url, "watchkeeper_ingest_spans_written_total")
    cpu_before = _cpu_seconds(pid) if pid is not None else (0.0, 0.0)
    stats, stop = Stats(), threading.Event()
    watchers = [
        threading.Thread(target=_probe, args=(url, run_id, stop, stats, soak)),
        threading.Thread(target=_retime, args=(bodies, stop)),
    ]
    if pid is not None:
        watchers.append(threading.Thread(target=_watch_rss, args=(pid, stop, stats)))
    if soak is not None:
        watchers += [
            threading.Thread(target=soak.run_queries),
            threading.Thread(target=soak.tick_minutes),
        ]
    for w in watchers:
        w.daemon = True
        w.start()
    next_no = [0]
    interval = per * args.senders / rate if rate else 0.0
    started = time.perf_counter()
    senders = [
        threading.Thread(
            target=_sender,
            args=(url, bodies, next_no, total_requests, run_id, per, stats, interval),
        )
        for _ in range(args.senders)
    ]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    acked_at = time.perf_counter()
    while (
        _metric(url, "watchkeeper_ingest_spans_written_total") < written_before + stats.acked_spans
    ):
        time.sleep(0.1)
    written_at = time.perf_counter()
    if pid is not None:
        main_s, kids_s = _cpu_seconds(pid)
        n = max(stats.acked_spans, 1)
        print(
            f"server CPU: {(main_s - cpu_before[0]) / n * 1e6:.1f} µs/span in the server "
            f"process, {(kids_s - cpu_before[1]) / n * 1e6:.1f} µs/span in its workers"
        )
    stop.set()
    if soak is not None:
        soak.stop.set()
    for w in watchers:
        w.join(timeout=60)
    return stats, Timing(started, acked_at, written_at)


def _retime(bodies: list[bytes], stop: threading.Event) -> None:
    """Every RETIME_S, the templates' spans moved to now: a run's spans spread over its time,
    as real traffic does (the dashboards' windows then hold a steady amount of data)."""
    clocked = Clocked(bodies)
    while not stop.wait(RETIME_S):
        bodies[:] = clocked.moved()


def _duration_s(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1:] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _stored(url: str) -> int:
    """Spans of the workload's service in the store (its spans start within the last day)."""
    now_ms = int(time.time() * 1000)  # the API's instants are unix milliseconds
    params = {
        "service": "bench-app",
        "start": str(now_ms - 86_400_000),
        "end": str(now_ms + 3_600_000),
    }
    return int(httpx.get(f"{url}/api/v1/summary", params=params, timeout=120).json()["count"])


def _report(url: str, stats: Stats, t: Timing) -> None:
    text = _scrape(url)
    p50, p99 = _histogram_quantiles(text, "watchkeeper_ingest_lag_seconds", (0.5, 0.99))
    acked_s, written_s = t.acked_at - t.started, t.written_at - t.started
    print(
        f"acknowledged: {stats.acked_spans} spans in {acked_s:.1f} s = "
        f"{stats.acked_spans / acked_s:,.0f} spans/s "
        f"({stats.overloaded} answers 503/429 retried, {stats.errors} errors)"
    )
    print(
        f"written to the store: {stats.acked_spans / written_s:,.0f} spans/s "
        f"sustained ({written_s:.1f} s until all were written)"
    )
    lags = stats.probe_lags
    print(
        f"ack -> queryable (probe traces via the query API, n={len(lags)}): "
        f"p50 {_fmt_s(_pct(lags, 0.5))}, p99 {_fmt_s(_pct(lags, 0.99))}"
    )
    print(f"ack -> written (server histogram, all requests): p50 {_fmt_s(p50)}, p99 {_fmt_s(p99)}")
    write_s = _sample(text, "watchkeeper_ingest_batch_write_seconds_sum")
    batches = _sample(text, "watchkeeper_ingest_batch_write_seconds_count")
    written = _sample(text, "watchkeeper_ingest_spans_written_total")
    if batches:
        print(
            f"store writes: {batches:.0f} batches of {written / batches:,.0f} spans on average, "
            f"{write_s / written * 1e6:.0f} µs/span inside store.write ({write_s:.1f} s in all)"
        )


def _figures(url: str, stats: Stats, t: Timing) -> dict[str, float | None]:
    """The run's figures as `_report` prints them (kept for `--engine both`)."""
    text = _scrape(url)
    p50, p99 = _histogram_quantiles(text, "watchkeeper_ingest_lag_seconds", (0.5, 0.99))
    written = _sample(text, "watchkeeper_ingest_spans_written_total")
    write_s = _sample(text, "watchkeeper_ingest_batch_write_seconds_sum")
    return {
        "acked_per_s": stats.acked_spans / (t.acked_at - t.started),
        "written_per_s": stats.acked_spans / (t.written_at - t.started),
        "lag_p50_s": p50,
        "lag_p99_s": p99,
        "write_us_per_span": write_s / written * 1e6 if written else None,
        "peak_rss_mib": stats.peak_rss / 2**20 if stats.peak_rss else None,
        "load": load(),
    }


def _after_burst(url: str, pid: int) -> None:
    """The server's memory once it has been idle long enough to give the burst back, and
    once its decode workers have stopped too (`ingest.workers_idle_s`)."""
    config = IngestConfig()
    waited = 0.0
    for idle_s in sorted({config.idle_release_s + 5, config.workers_idle_s + 5}):
        time.sleep(idle_s - waited)
        waited = idle_s
        m = _memory(pid)
        text = _scrape(url)
        stored = _sample(text, "watchkeeper_store_memory_bytes")
        print(
            f"after the burst ({idle_s:.0f} s idle): RSS {m.rss / 2**20:.0f} MiB with its "
            f"{_sample(text, 'watchkeeper_ingest_workers'):.0f} workers, "
            f"{m.file / 2**20:.0f} of them mapped files "
            f"({m.main / 2**20:.0f} MiB the server process alone; PSS of them all "
            f"{m.pss / 2**20:.0f} MiB); store engine {stored / 2**20:.0f} MiB; "
            f"{_sample(text, 'watchkeeper_ingest_spans_written_total'):,.0f} spans in the store"
        )


def main() -> None:
    """Run the benchmark and print its figures."""
    args = _args()
    if args.engine == "both":
        _engines.both(sys.argv[1:])
        return
    spans = 100_000 if args.quick else args.spans
    print(versions())
    print(f"machine at start: {load()}")
    print(BASELINE)
    print(GOALS)
    if args.store_only == "duckdb" and args.growth:
        from bench.ingest import _growth

        _growth.run(args.growth, args.memory_mb)
        return
    if args.store_only:
        _store_only.run(args.store_only, args.batches, args.profile)
        return
    if args.in_process:
        from bench.ingest._inprocess import run

        run(spans, args.spans_per_request, args.in_process)
        return
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-ingest-"))
    proc = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        port = _free_port()
        env = {} if args.workers is None else {"WATCHKEEPER_INGEST__WORKERS": str(args.workers)}
        env |= _engines.env(args.engine)
        proc = _start_server(tmp / "data", port, env)
        url = f"http://127.0.0.1:{port}"
    pid = proc.pid if proc else None
    rate, soak = args.rate, None
    offer = args.offer if args.offer is not None else (0.7 if args.soak else None)
    stored_before = _stored(url)
    acked = 0
    if offer is not None and not rate:
        # The benchmark's own run (1M spans), at least 300k: into an empty store the first
        # 100k write ~30% faster than a 1M-span run sustains, and 0.7x of that was the full
        # rate; 300k into a cold server (its workers starting) wrote 0.89x of it, so a soak
        # offered 0.62x.
        calibration = max(spans, 300_000)
        print(f"-- calibration: {calibration:,} spans flat out, to offer {offer:g}x the rate")
        stats, timing = _drive(url, args, calibration, pid)
        _report(url, stats, timing)
        acked += stats.acked_spans
        rate = offer * stats.acked_spans / (timing.written_at - timing.started)
        print(f"-- offered load: {rate:,.0f} spans/s")
    if args.soak:
        spans = int(rate * _duration_s(args.soak))
        soak = Soak(
            url,
            pid,
            lambda: _metric(url, "watchkeeper_ingest_spans_written_total"),
            lambda: _slow_writes(url),
        )
    stats, timing = _drive(url, args, spans, pid, rate, soak)
    acked += stats.acked_spans
    _report(url, stats, timing)
    if soak is not None:
        soak.report(acked, _stored(url) - stored_before, stats.errors)
    figures = _figures(url, stats, timing) | {"acked_spans": acked}
    figures["stored_spans"] = _stored(url) - stored_before
    _engines.record(None if args.url else args.engine, figures)
    if proc is not None:
        print(
            f"server peak RSS: {stats.peak_rss / 2**20:.0f} MiB with its workers, "
            f"{stats.peak_file / 2**20:.0f} of them mapped files "
            f"({stats.peak_main_rss / 2**20:.0f} MiB the server process alone; PSS of them all "
            f"{stats.peak_pss / 2**20:.0f} MiB); "
            f"store engine now: {_metric(url, 'watchkeeper_store_memory_bytes') / 2**20:.0f} MiB"
        )
        _after_burst(url, proc.pid)
        proc.terminate()
        proc.wait(timeout=60)
    print(f"machine at end: {load()}")
    print(f"data and server log: {tmp}")


if __name__ == "__main__":
    main()
