"""Part (a): OTLP protobuf log records from 4 senders into a real `watchkeeper serve`.

Records/s acknowledged and written (the server's `watchkeeper_logs_records_written`
counter), ack -> searchable (a probe record with a unique word every 0.25 s, found through
`GET /api/v1/logs?q=`), the server's peak RSS with its children, and bytes on disk per record
after a clean stop (the log store's files only: the spool is emptied and not counted).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from bench.ingest.__main__ import _memory, _metric, _pct
from bench.logs._workload import probe, stamp, template, templates

_PROTOBUF = {"Content-Type": "application/x-protobuf"}
WRITTEN = "watchkeeper_logs_records_written_total"


@dataclass
class Run:
    """What the senders, the probe and the RSS watcher saw."""

    acked: int = 0
    retried: int = 0  # answers 429/503, sent again after Retry-After
    errors: int = 0
    lags: list[float] = field(default_factory=list)
    peak_rss: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sender(url: str, bodies: list[bytes], per: int, todo: list[int], run: Run) -> None:
    with httpx.Client(timeout=60) as client:
        while True:
            with run.lock:
                no = todo[0]
                todo[0] -= 1
            if no <= 0:
                return
            body = stamp(bodies[no % len(bodies)], no)
            while True:
                r = client.post(f"{url}/v1/logs", content=body, headers=_PROTOBUF)
                if r.status_code not in (429, 503):
                    break
                with run.lock:
                    run.retried += 1
                time.sleep(float(r.headers.get("retry-after", "1")))
            with run.lock:
                if r.status_code == 200:
                    run.acked += per
                else:
                    run.errors += 1


def _probe(url: str, stop: threading.Event, run: Run) -> None:
    """Every 0.25 s a record with a word of its own; poll the search until it is found."""
    tag = f"{time.time_ns() & 0xFFFFFFFF:08x}"
    no = 0
    with httpx.Client(timeout=30) as client:
        while not stop.wait(0.25):
            no += 1
            word = f"probe{tag}x{no}"
            if client.post(f"{url}/v1/logs", content=probe(word), headers=_PROTOBUF).is_error:
                continue
            acked = time.perf_counter()
            while not stop.is_set():
                r = client.get(f"{url}/api/v1/logs", params={"q": word, "range": "1h"})
                if r.status_code == 200 and r.json()["records"]:
                    with run.lock:
                        run.lags.append(time.perf_counter() - acked)
                    break
                time.sleep(0.05)


def _watch_rss(pid: int, stop: threading.Event, run: Run) -> None:
    while not stop.wait(0.2):
        try:
            rss = _memory(pid).rss
        except psutil.Error:
            return
        run.peak_rss = max(run.peak_rss, rss)


def drive(url: str, pid: int, records: int, senders: int, per: int) -> dict[str, float]:
    """Send `records` records; return the figures once every acknowledged one is written."""
    began = time.perf_counter()
    bodies = [template(seed, per) for seed in range(templates(records, per))]
    wire = sum(map(len, bodies)) / len(bodies) / per
    print(f"{len(bodies)} request templates built in {time.perf_counter() - began:.1f} s")
    requests = -(-records // per)
    print(
        f"ingest: {requests} requests x {per} records, {senders} senders, flat out, "
        f"{wire:.0f} bytes/record on the wire (OTLP protobuf)"
    )
    before = _metric(url, WRITTEN)
    cpu_before = _cpu_s(pid)
    run, stop, todo = Run(), threading.Event(), [requests]
    watchers = [
        threading.Thread(target=_probe, args=(url, stop, run), daemon=True),
        threading.Thread(target=_watch_rss, args=(pid, stop, run), daemon=True),
    ]
    for w in watchers:
        w.start()
    started = time.perf_counter()
    threads = [
        threading.Thread(target=_sender, args=(url, bodies, per, todo, run)) for _ in range(senders)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acked_s = time.perf_counter() - started
    while _metric(url, WRITTEN) < before + run.acked:
        time.sleep(0.1)
    written_s = time.perf_counter() - started
    cpu = _cpu_s(pid) - cpu_before
    time.sleep(1.0)  # a last probe or two once the writer is idle
    stop.set()
    for w in watchers:
        w.join(timeout=30)
    return {
        "acked": run.acked, "retried": run.retried, "errors": run.errors,
        "acked_per_s": run.acked / acked_s, "written_per_s": run.acked / written_s,
        "lag_p50_s": _pct(run.lags, 0.5) or float("nan"),
        "lag_p99_s": _pct(run.lags, 0.99) or float("nan"), "probes": len(run.lags),
        "peak_rss_mib": run.peak_rss / 2**20, "cpu_us": cpu / max(run.acked, 1) * 1e6,
    }  # fmt: skip


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the server and its children so far: what a record
    costs, whatever else the machine runs meanwhile (a child that ended is not counted)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def bytes_on_disk(data_dir: Path, engine: str) -> int:
    """The log store's bytes after a clean stop: `logs.duckdb` (and a WAL, if any), or the
    whole chDB directory (the span tables in it are empty in this run; its system tables
    and parts not merged yet count: an upper bound)."""
    if engine == "duckdb":
        return sum(p.stat().st_size for p in data_dir.glob("logs.duckdb*"))
    return sum(p.stat().st_size for p in (data_dir / "chdb").rglob("*") if p.is_file())
