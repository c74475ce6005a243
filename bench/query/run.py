"""Query benchmark of the span store: `python bench/query/run.py [--rows N] [--engine E]`.

Generates N realistic spans (default 10M, cached under --dir so reruns skip it), then times
the dashboard queries through the store (p50/p95 of --runs runs each), the idempotent write
path on top of the data, writes beside a running query, and an SQLite baseline of the same
percentile group-by on a smaller sample. `--engine clickhouse` runs the same on ClickHouse
in-process (chDB), `--engine both` runs both and prints them side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bytes
from generate import SPANS_PER_TRACE, Shape, chunk, payload_pool, payloads_for

from watchkeeper.config import StoreConfig
from watchkeeper.model import SpanBatch, SpanRow
from watchkeeper.server._query_api import DEFAULT_BOUNDS_MS
from watchkeeper.store import SpanFilter, Store
from watchkeeper.store._payload import PayloadCodec
from watchkeeper.store._render import Query
from watchkeeper.store._rollup import TABLES, insert_sql
from watchkeeper.store._traces import insert_sql as traces_insert_sql
from watchkeeper.store.clickhouse import ClickHouseStore
from watchkeeper.store.duckdb import DuckDBStore

CHUNK_TRACES = 250_000
HOUR_NS = 3600 * 1_000_000_000


def build(path: Path, shape: Shape) -> dict[str, float]:
    """Write the data file (schema through DuckDBStore, rows through DuckDB's Arrow bulk path)."""
    tmp = path.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    DuckDBStore(tmp).close()  # creates the schema at the latest version
    con = duckdb.connect(str(tmp))
    pool = payload_pool(PayloadCodec())
    t0 = time.perf_counter()
    gen_s = 0.0
    for first in range(0, shape.traces, CHUNK_TRACES):
        g = time.perf_counter()
        spans = chunk(shape, first, min(CHUNK_TRACES, shape.traces - first))
        payloads = payloads_for(spans, pool, first)
        gen_s += time.perf_counter() - g
        con.register("new_spans", spans)
        con.execute("INSERT INTO spans SELECT * FROM new_spans")
        con.register("new_payloads", payloads)
        con.execute("INSERT INTO payloads SELECT * FROM new_payloads")
        print(f"  {first + CHUNK_TRACES:>9,} traces written", file=sys.stderr, flush=True)
    con.execute(traces_insert_sql("spans"))
    for table in TABLES:  # what DuckDBStore.write maintains batch by batch
        con.execute(insert_sql("spans", table=table))
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(path)
    total = time.perf_counter() - t0
    return {"build_s": total, "generate_s": gen_s, "insert_s": total - gen_s}


def build_clickhouse(url: str, shape: Shape) -> dict[str, float]:
    """Write the same spans and payloads into ClickHouse (schema through ClickHouseStore, rows
    through clickhouse-connect's Arrow insert; the view fills the trace lookup table)."""
    import clickhouse_connect

    ClickHouseStore(url, database="bench").close()  # the schema at the latest version
    client = clickhouse_connect.get_client(dsn=url, database="bench")
    pool = payload_pool(PayloadCodec())
    t0 = time.perf_counter()
    gen_s = 0.0
    for first in range(0, shape.traces, CHUNK_TRACES):
        g = time.perf_counter()
        spans = chunk(shape, first, min(CHUNK_TRACES, shape.traces - first))
        payloads = payloads_for(spans, pool, first)
        gen_s += time.perf_counter() - g
        client.insert_arrow("payloads", payloads)
        client.insert_arrow("spans", spans)
        print(f"  {first + CHUNK_TRACES:>9,} traces written", file=sys.stderr, flush=True)
    client.command("OPTIMIZE TABLE spans FINAL")  # what background merges reach in time
    client.close()
    total = time.perf_counter() - t0
    return {"build_s": total, "generate_s": gen_s, "insert_s": total - gen_s}


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    """Cold (first) run, then p50/p95 of `runs` runs, in ms."""
    t = time.perf_counter()
    fn()
    cold = (time.perf_counter() - t) * 1000
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"cold_ms": cold, "p50_ms": statistics.median(times), "p95_ms": p95}


def queries(store: Store, end_ns: int, trace_ids: list[str]) -> dict[str, Callable[[], object]]:
    """The benchmark's dashboard queries over the last 7 days of project "bench"."""
    week = SpanFilter("bench", start_ns=end_ns - 7 * 24 * HOUR_NS, end_ns=end_ns)
    day = SpanFilter("bench", start_ns=end_ns - 24 * HOUR_NS, end_ns=end_ns)
    llm = SpanFilter("bench", start_ns=week.start_ns, end_ns=end_ns, scope="llm")
    errors = SpanFilter("bench", outcomes=("error",))
    requests = SpanFilter("bench", start_ns=week.start_ns, end_ns=end_ns, scope="requests")
    it = iter(trace_ids * 1000)
    return {
        "summary, 7 days (all spans)": lambda: store.summary(week),
        "summary, 24 hours (all spans)": lambda: store.summary(day),
        "summary, newest 1000 requests": lambda: store.summary(
            SpanFilter("bench", scope="requests"), 1000
        ),
        "percentiles by model, 7 days": lambda: store.breakdown(llm, "model"),
        "hourly series, 7 days": lambda: store.timeseries(week, 3600),
        "hourly series by model, 7 days": lambda: store.timeseries(llm, 3600, "model", 5),
        "latency heatmap of requests, 7 days": lambda: store.heatmap(
            requests, 3600, DEFAULT_BOUNDS_MS
        ),
        "cost of top 20 users, 7 days": lambda: store.breakdown(
            week, "user", 20, "cost", percentiles=False
        ),
        "one trace by id (with payloads)": lambda: store.trace("bench", next(it)),
        "latest 50 errors": lambda: store.search_spans(errors, 50),
        "latest 50 spans, text search": lambda: store.search_spans(
            SpanFilter("bench", text="warranty please"), 50
        ),
        "text search, no match (one budget)": lambda: store.search_spans(
            SpanFilter("bench", text="no such phrase"), 50
        ),
    }


def rows_of(table: pa.Table) -> list[SpanRow]:
    """SpanRow objects of an Arrow table (as ingest hands them to the store)."""
    return [SpanRow(**d) for d in table.to_pylist()]


def middle_rows(path: Path, n: int = 10_000) -> list[SpanRow]:
    """`n` stored spans from the middle of the week (a late client retry resends these)."""
    con = duckdb.connect(str(path), read_only=True)
    mid = con.execute("SELECT (min(start_ns) + max(start_ns)) // 2 FROM spans").fetchall()[0]
    table = con.sql(
        "SELECT * FROM spans WHERE start_ns >= $m ORDER BY start_ns LIMIT $n",
        params={"m": mid[0] if mid else 0, "n": n},
    ).to_arrow_table()
    con.close()
    return rows_of(table)


def write_path(store: Store, shape: Shape, batches: int, old: list[SpanRow]) -> dict[str, float]:
    """Idempotent writes of new 10k-span batches at "now", a replay, and a late retry."""
    later = Shape(traces=shape.traces, end_ns=shape.end_ns + 24 * HOUR_NS, seed=99)
    per = 10_000 // SPANS_PER_TRACE
    data = [rows_of(chunk(later, i * per, per)) for i in range(batches)]
    times = []
    for rows in data:
        t = time.perf_counter()
        assert store.write(SpanBatch(rows)) == len(rows)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    assert store.write(SpanBatch(data[-1])) == 0
    replay = time.perf_counter() - t
    t = time.perf_counter()
    assert store.write(SpanBatch(old)) == 0
    late = time.perf_counter() - t
    spans = sum(len(d) for d in data)
    return {
        "write_rows_per_s": spans / sum(times),
        "write_batch_p50_ms": statistics.median(times) * 1000,
        "write_batch_max_ms": max(times) * 1000,
        "replay_10k_ms": replay * 1000,
        "late_retry_10k_ms": late * 1000,
    }


def writes_beside_reads(store: Store, shape: Shape, batches: int) -> dict[str, float]:
    """Write latency while another thread runs 7-day summaries back to back."""
    later = Shape(traces=shape.traces, end_ns=shape.end_ns + 48 * HOUR_NS, seed=98)
    per = 10_000 // SPANS_PER_TRACE
    data = [rows_of(chunk(later, i * per, per)) for i in range(batches)]
    stop = threading.Event()
    reads = [0]

    def reader() -> None:
        f = SpanFilter("bench", start_ns=shape.end_ns - 7 * 24 * HOUR_NS)
        while not stop.is_set():
            store.summary(f)
            reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    times = []
    for rows in data:
        t = time.perf_counter()
        store.write(SpanBatch(rows))
        times.append(time.perf_counter() - t)
    stop.set()
    thread.join()
    times.sort()
    return {
        "write_beside_reads_p50_ms": statistics.median(times) * 1000,
        "write_beside_reads_max_ms": times[-1] * 1000,
        "summaries_meanwhile": reads[0],
    }


def sqlite_baseline(path: Path, rows: int) -> dict[str, float]:
    """The percentiles-by-model group-by in SQLite (window functions: it has no percentile)."""
    con = duckdb.connect(str(path), read_only=True)
    sample = con.execute(
        "SELECT coalesce(response_model, request_model), duration_ns, start_ns FROM spans "
        "WHERE project = 'bench' AND operation = 'llm' LIMIT $n",
        {"n": rows},
    ).fetchall()
    con.close()
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE spans (model TEXT, duration_ns INTEGER, start_ns INTEGER)")
    lite.executemany("INSERT INTO spans VALUES (?, ?, ?)", sample)
    sql = """
        SELECT model, count(*),
          max(CASE WHEN rn <= 0.50 * n THEN duration_ns END),
          max(CASE WHEN rn <= 0.95 * n THEN duration_ns END),
          max(CASE WHEN rn <= 0.99 * n THEN duration_ns END)
        FROM (SELECT model, duration_ns,
                row_number() OVER (PARTITION BY model ORDER BY duration_ns) AS rn,
                count(*) OVER (PARTITION BY model) AS n FROM spans)
        GROUP BY model"""
    t = time.perf_counter()
    lite.execute(sql).fetchall()
    return {
        "sqlite_rows": len(sample),
        "sqlite_percentiles_by_model_ms": (time.perf_counter() - t) * 1000,
    }


def main() -> None:
    """Build or reuse the data, run every measurement on each engine, print and save."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="spans to generate")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per query")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/watchkeeper-bench"))
    ap.add_argument("--sqlite-rows", type=int, default=200_000)
    ap.add_argument("--raw", action="store_true", help="answer from spans only (no rollup)")
    ap.add_argument("--engine", choices=["duckdb", "clickhouse", "both"], default="duckdb")
    ap.add_argument(
        "--bytes", action="store_true", help="ClickHouse: bytes per span by column, codecs tried"
    )
    ap.add_argument("--trial-rows", type=int, default=1_000_000, help="spans the codecs try")
    args = ap.parse_args()
    shape = Shape(traces=args.rows // SPANS_PER_TRACE)
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.bytes:
        clickhouse_bytes(args, shape)
        return
    runs = {}
    if args.engine in ("duckdb", "both"):
        runs["duckdb"] = run_duckdb(args, shape)
        report(runs["duckdb"])
    if args.engine in ("clickhouse", "both"):
        runs["clickhouse"] = run_clickhouse(args, shape)
        report(runs["clickhouse"])
    if len(runs) == 2:
        side_by_side(runs["duckdb"], runs["clickhouse"])
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    for engine, out in runs.items():
        suffix = ("-raw" if args.raw else "") + ("" if engine == "duckdb" else f"-{engine}")
        (results / f"query-{out['rows']}{suffix}.json").write_text(json.dumps(out, indent=2) + "\n")


def run_duckdb(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """Every measurement on DuckDB."""
    path = args.dir / f"spans-{args.rows}.duckdb"
    out: dict[str, Any] = {"engine": "duckdb", "rows": shape.traces * SPANS_PER_TRACE}
    out["rollup"] = not args.raw
    if not path.exists():
        print(f"generating {out['rows']:,} spans into {path} ...", file=sys.stderr)
        out.update(build(path, shape))
    t = time.perf_counter()
    DuckDBStore(path).close()  # upgrades a file of an older schema (the rollup is backfilled)
    out["open_and_migrate_s"] = time.perf_counter() - t
    out["file_mb"] = path.stat().st_size / 1e6
    out["sqlite"] = sqlite_baseline(path, args.sqlite_rows)
    work = args.dir / "work.duckdb"  # the write measurements add rows: work on a copy
    work.write_bytes(path.read_bytes())
    old = middle_rows(work)
    out["threads"] = StoreConfig().threads  # as the server opens it (store.threads)
    store = DuckDBStore(work, use_rollup=not args.raw, threads=out["threads"])
    measure(store, shape, old, args.runs, out)
    work.unlink()
    return out


def run_clickhouse(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """Every measurement on ClickHouse in-process (chDB); the data kept under --dir."""
    out: dict[str, Any] = {"engine": "clickhouse", "rows": shape.traces * SPANS_PER_TRACE}
    out["rollup"] = not args.raw
    url, built = clickhouse_data(args, shape)
    out.update(built)
    t = time.perf_counter()
    store = ClickHouseStore(url, database="bench", use_rollup=not args.raw)
    out["open_and_migrate_s"] = time.perf_counter() - t
    sql = "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' AND active"
    (row,) = store.rows(Query(sql, {}))  # every table's parts on disk, compressed
    out["file_mb"] = int(row[0] or 0) / 1e6
    mid = store.rows(Query("SELECT intDiv(min(start_ns) + max(start_ns), 2) FROM spans", {}))[0][0]
    page = store.search_spans(SpanFilter("bench", start_ns=int(mid)), 1000)
    old = page.items  # stored spans a late client retry resends
    measure(store, shape, old, args.runs, out)
    return out


def clickhouse_data(args: argparse.Namespace, shape: Shape) -> tuple[str, dict[str, Any]]:
    """The chDB URL of the cached data (built first when missing) and the build's figures."""
    root = args.dir / f"chdb-{args.rows}"
    url, out = f"chdb://{root}", {}
    if not (root / "built").exists():
        rows = shape.traces * SPANS_PER_TRACE
        print(f"generating {rows:,} spans into {root} ...", file=sys.stderr)
        out = build_clickhouse(url, shape)
        (root / "built").touch()
    return url, out


def clickhouse_bytes(args: argparse.Namespace, shape: Shape) -> None:
    """Bytes per span by column (every part merged), then the codecs tried (`_bytes`)."""
    import clickhouse_connect
    from bench._machine import load

    url, _ = clickhouse_data(args, shape)
    client = clickhouse_connect.get_client(dsn=url, database="bench")
    print(f"python -m bench.query --engine clickhouse --bytes --rows {args.rows} "
          f"--trial-rows {args.trial_rows} --dir {args.dir}; {load()}")  # fmt: skip
    rows = lambda sql: client.query(sql).result_rows  # noqa: E731
    for table in ("spans", "payloads", "traces", "trace_context"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")  # what merges reach in time
    ((spans,),) = rows("SELECT count() FROM spans")
    print(f"\n{spans:,} spans; bytes per span by column (every table's bytes over the spans):")
    _bytes.print_columns(_bytes.columns(rows, "bench", spans), _bytes.codecs_of(rows, "bench"))
    for table in ("spans", "payloads"):
        kinds = {str(n): str(k) for n, k in rows(
            f"SELECT name, type FROM system.columns WHERE database = 'bench' AND table = '{table}'"
        )}  # fmt: skip
        sizes = _bytes.trial(rows, client.command, "bench", table, args.trial_rows)
        _bytes.print_trial(table, sizes, kinds)
    n = 20_000
    trial = _bytes.payload_trial(rows, client.command, client.insert_arrow, "bench", n)
    _bytes.print_payload_trial(trial, n)
    client.close()


def measure(store: Store, shape: Shape, old: list[SpanRow], runs: int, out: dict[str, Any]) -> None:
    """The queries and the writes, into `out`; closes the store."""
    t = time.perf_counter()
    ids = [r.trace_id for r in store.search_spans(SpanFilter("bench", scope="requests"), 20).items]
    out["open_and_first_page_ms"] = (time.perf_counter() - t) * 1000
    out["queries"] = {
        name: timed(fn, runs) for name, fn in queries(store, shape.end_ns, ids).items()
    }
    out["writes"] = write_path(store, shape, 10, old) | writes_beside_reads(store, shape, 10)
    store.close()
    out["load_average_1m_5m_15m"] = list(os.getloadavg())  # other work on the machine


def side_by_side(duck: dict[str, Any], ch: dict[str, Any]) -> None:
    """p50/p95 of each query on both engines."""
    print(f"\n{'query':<36} {'DuckDB p50':>11} {'p95':>9} {'ClickHouse p50':>15} {'p95':>9}")
    for name, d in duck["queries"].items():
        c = ch["queries"][name]
        print(f"{name:<36} {d['p50_ms']:>11.1f} {d['p95_ms']:>9.1f} ", end="")
        print(f"{c['p50_ms']:>15.1f} {c['p95_ms']:>9.1f}")
    print(f"{'bytes on disk (MB)':<36} {duck['file_mb']:>21,.0f} {ch['file_mb']:>25,.0f}")


def report(out: dict[str, Any]) -> None:
    """Print the figures as a table."""
    how = "hourly rollup where it applies" if out["rollup"] else "spans only"
    engine = {"duckdb": "DuckDB", "clickhouse": "ClickHouse (chDB)"}[out["engine"]]
    print(f"\n{engine} span store, {out['rows']:,} spans, {out['file_mb']:,.0f} MB, {how}")
    if "threads" in out:
        print(f"engine threads: {out['threads']} (the server's default, store.threads)")
    print(f"machine load average at the end (1/5/15 min): {out['load_average_1m_5m_15m']}")
    print(f"open (and schema upgrade) of the data file: {out['open_and_migrate_s']:.1f} s")
    if "build_s" in out:
        rate = out["rows"] / out["insert_s"]
        print(f"build {out['build_s']:.0f} s (generate {out['generate_s']:.0f} s, ", end="")
        print(f"insert {out['insert_s']:.0f} s = {rate:,.0f} rows/s)")
    print(f"\n{'query':<36} {'cold ms':>9} {'p50 ms':>9} {'p95 ms':>9}")
    for name, q in out["queries"].items():
        print(f"{name:<36} {q['cold_ms']:>9.1f} {q['p50_ms']:>9.1f} {q['p95_ms']:>9.1f}")
    print("\nwrites (10k-span batches of SpanRow objects, idempotent):")
    for key, value in out["writes"].items():
        print(f"  {key:<30} {value:>12,.1f}")
    if "sqlite" not in out:
        return
    s = out["sqlite"]
    print(
        f"\nBASELINE SQLite (in-memory, {s['sqlite_rows']:,} rows, not {out['rows']:,}): ", end=""
    )
    print(f"percentiles by model {s['sqlite_percentiles_by_model_ms']:,.0f} ms")


if __name__ == "__main__":
    main()
