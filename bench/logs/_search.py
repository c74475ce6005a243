"""Part (b): searches over a large store through the HTTP API.

The store is built by writing through the engine's log store class directly (in a child
process, so the engine's files are closed before the server opens them), in blocks of 500
records as the ingest writer makes them: much faster than sending it all over HTTP, and the
same table, blocks and indexes. Then a real server answers each query, timed end to end.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from bench.logs._workload import RARE, rows

DAY_NS = 86_400 * 10**9
BLOCK = 500  # records per write: what one OTLP request of an SDK's batch makes
PROJECT = "default"  # the project of a server without keys


def _build(engine: str, data_dir: Path, total: int, end_ns: int) -> None:
    start_ns = end_ns - 7 * DAY_NS
    if engine == "duckdb":
        from watchkeeper.store.duckdb_logs import DuckDBLogStore

        store: Any = DuckDBLogStore(data_dir / "logs.duckdb")
    else:
        from watchkeeper.store.clickhouse_logs import ClickHouseLogStore

        store = ClickHouseLogStore(f"chdb://{data_dir / 'chdb'}")
    step = 50_000 if engine == "clickhouse" else BLOCK  # ClickHouse: parts of 50k records
    for at in range(0, total, step):
        batch = rows(at, min(step, total - at), total, start_ns, 7 * DAY_NS)
        for r in batch:
            r.project = PROJECT
        store.write(batch)
    store.close()


def build(engine: str, data_dir: Path, total: int, end_ns: int) -> float:
    """Write `total` records over the 7 days before `end_ns`; return the seconds it took."""
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=_build, args=(engine, data_dir, total, end_ns)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"building the {engine} store failed (exit {child.exitcode})")
    return time.perf_counter() - started


def queries(total: int, end_ns: int) -> dict[str, tuple[str, dict[str, str]]]:
    """The four searches of issue 12: name -> (path, parameters)."""
    end_ms = end_ns // 10**6
    week = {"start": str(end_ms - 7 * 86_400_000), "end": str(end_ms)}
    trace_id = next(r.trace_id for r in rows(total // 2, 50, total, 0, 1) if r.trace_id)
    return {
        f"word '{RARE}' in the body, 24 h": (
            "/api/v1/logs",
            {"q": RARE, "start": str(end_ms - 86_400_000), "end": str(end_ms)},
        ),
        "a trace id, 7 days": ("/api/v1/logs", {"trace_id": trace_id, **week}),
        "severity >= error, 7 days": ("/api/v1/logs", {"severity": "error", **week}),
        "histogram, 7 days": ("/api/v1/logs/histogram", {"step_ms": "3600000", **week}),
    }


def measure(url: str, total: int, end_ns: int, runs: int) -> dict[str, tuple[float, float, int]]:
    """name -> (p50 s, p95 s, records or buckets answered), each query `runs` times after
    one warm-up."""
    out = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for name, (path, params) in queries(total, end_ns).items():
            times, answered = [], 0
            for i in range(runs + 1):
                started = time.perf_counter()
                r = client.get(path, params=params)
                elapsed = time.perf_counter() - started
                r.raise_for_status()
                doc = r.json()
                answered = len(doc.get("records", doc.get("buckets", [])))
                if i:
                    times.append(elapsed)
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            out[name] = (statistics.median(times), p95, answered)
    return out
