"""Logs benchmark (issue 12): ingest into a real `watchkeeper serve`, then searches over a
large store through the HTTP API.

    .venv/bin/python -m bench.logs                       # 1M records in, 10M searched, DuckDB
    .venv/bin/python -m bench.logs --quick               # 50k in, 200k searched: seconds
    .venv/bin/python -m bench.logs --engine both         # DuckDB, then ClickHouse (chDB)
    .venv/bin/python -m bench.logs --records 2000000     # the search store's size
    .venv/bin/python -m bench.logs --skip-search         # only the ingest part (or --skip-ingest)

Prints the versions that matter, the machine's load at start and end, and the goals of
issue 12 beside each figure. No peer (Loki) is installed on this machine: not run here.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from pathlib import Path

from bench._machine import PACKAGES, load, versions
from bench.ingest.__main__ import _free_port, _start_server
from bench.logs import _disk, _ingest, _search

ENV = {"duckdb": {}, "clickhouse": {"WATCHKEEPER_STORE__BACKEND": "chdb"}}
NAMES = {"duckdb": "DuckDB", "clickhouse": "ClickHouse (chDB)"}
GOALS = {
    "written": 50_000,  # records/s
    "lag_p99_s": 2.0,
    "rss_mib": 500,
    "bytes_per_record": 60,
    "search_p95_s": 0.5,
}
_WHAT = {"duckdb": "logs.duckdb", "clickhouse": "the whole chDB directory: an upper bound"}
PEER = "peer: Grafana Loki is not installed on this machine (no package for it here): not run"


def _mark(ok: bool) -> str:
    return "meets the goal" if ok else "MISSES the goal"


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.logs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--engine", choices=[*ENV, "both"], default="duckdb")
    ap.add_argument("--quick", action="store_true", help="50k records in, 200k searched, 5 runs")
    ap.add_argument("--ingest-records", type=int, help="records sent (default 1,000,000)")
    ap.add_argument("--records", type=int, help="the search store's size (default 10,000,000)")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--per-request", type=int, default=500, help="records per OTLP request")
    ap.add_argument("--runs", type=int, help="times each search is timed (default 20)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    args = ap.parse_args()
    # --quick changes the sizes not given explicitly
    defaults = (50_000, 200_000, 5) if args.quick else (1_000_000, 10_000_000, 20)
    for name, default in zip(("ingest_records", "records", "runs"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=120)


def ingest(engine: str, args: argparse.Namespace, tmp: Path) -> None:
    """Part (a) on `engine`, on a fresh data directory."""
    data = tmp / f"ingest-{engine}" / "data"
    data.mkdir(parents=True)
    port = args.port or _free_port()
    proc = _start_server(data, port, _env(engine))
    url = f"http://127.0.0.1:{port}"
    try:
        f = _ingest.drive(url, proc.pid, args.ingest_records, args.senders, args.per_request)
    finally:
        _stop(proc)
    size = _ingest.bytes_on_disk(data, engine)
    per = size / max(f["acked"], 1)
    print(
        f"acknowledged: {f['acked']:,.0f} records, {f['acked_per_s']:,.0f} records/s "
        f"({f['retried']:.0f} answers 429/503 retried, {f['errors']:.0f} errors)"
    )
    print(
        f"written: {f['written_per_s']:,.0f} records/s sustained — "
        f"{_mark(f['written_per_s'] >= GOALS['written'])} (>= {GOALS['written']:,}/s)"
    )
    p99 = f["lag_p99_s"]
    print(
        f"ack -> searchable (probe via GET /api/v1/logs?q=, n={f['probes']:.0f}): "
        f"p50 {f['lag_p50_s'] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms — "
        f"{_mark(not math.isnan(p99) and p99 < GOALS['lag_p99_s'])} (p99 < 2 s)"
    )
    print(
        f"server CPU (with its children, from the first request until all were written): "
        f"{f['cpu_us']:.1f} µs/record"
    )
    print(
        f"server peak RSS with its children: {f['peak_rss_mib']:.0f} MiB — "
        f"{_mark(f['peak_rss_mib'] < GOALS['rss_mib'])} (< 500 MiB)"
    )
    print(
        f"on disk after a clean stop ({_WHAT[engine]}): {size / 2**20:.1f} MiB = "
        f"{per:.1f} bytes/record — "
        f"{_mark(per < GOALS['bytes_per_record'])} (< 60)"
    )
    if engine == "duckdb":
        print("where the bytes go (pragma storage_info; a segment runs to the next one):")
        print("\n".join(_disk.report(data / "logs.duckdb")))


def search(engine: str, args: argparse.Namespace, tmp: Path) -> None:
    """Part (b) on `engine`: build the store, start a server on it, time the four searches."""
    data = tmp / f"search-{engine}" / "data"
    end_ns = (time.time_ns() // 3_600_000_000_000) * 3_600_000_000_000  # on the hour
    print(
        f"search store: {args.records:,} records over 7 days, written through the "
        f"{NAMES[engine]} log store class directly (not HTTP: faster, the same table) ..."
    )
    took = _search.build(engine, data, args.records, end_ns)
    print(f"  built in {took:.0f} s ({args.records / took:,.0f} records/s)")
    port = args.port or _free_port()
    proc = _start_server(data, port, _env(engine))
    url = f"http://127.0.0.1:{port}"
    try:
        results = _search.measure(url, args.records, end_ns, args.runs)
    finally:
        _stop(proc)
    head = f"query (HTTP API, {args.runs} runs)"
    print(f"{head:40}{'p50':>10}{'p95':>10}{'answered':>10}")
    for name, (p50, p95, n) in results.items():
        print(
            f"{name:40}{p50 * 1000:8.0f}ms{p95 * 1000:8.0f}ms{n:10d}  "
            f"{_mark(p95 < GOALS['search_p95_s'])}"
        )


def _env(engine: str) -> dict[str, str]:
    return {"WATCHKEEPER_AUTH__REQUIRED": "false", **ENV[engine]}


def main() -> None:
    """Run the benchmark and print its figures."""
    args = _args()
    print(versions((*PACKAGES, "chdb")))
    print(f"machine at start: {load()}")
    print(
        "goals (issue 12): >= 50,000 records/s written, ack -> searchable p99 < 2 s, "
        "server RSS < 500 MiB, < 60 bytes/record on disk, each search p95 < 500 ms"
    )
    print(PEER)
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-logs-"))
    for engine in ENV if args.engine == "both" else (args.engine,):
        print(f"\n===== {NAMES[engine]} =====", flush=True)
        if not args.skip_ingest:
            ingest(engine, args, tmp)
        if not args.skip_search:
            search(engine, args, tmp)
    print(f"\nmachine at end: {load()}")
    print(f"data and server logs: {tmp}")


if __name__ == "__main__":
    main()
