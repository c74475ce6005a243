"""The ClickHouse log table on chDB: bytes per record by codec, and what a word search reads
with the text index, a token Bloom filter, or no index.

`python -m bench.log_store [--records N]` writes N realistic records (`_records`: ~200-byte
bodies, 10 attributes, 30% in a trace) through `ClickHouseLogStore`, then:

1. codecs: copies them into tables that differ only in the codecs of the text columns and
   prints each one's compressed bytes per record (`system.columns`, parts merged);
2. search: the same records in tables with each body index, and for a rare and a common
   word the rows the engine reads once its indexes pruned the granules (`EXPLAIN
   ESTIMATE`), and the index's bytes per record.

The codecs and the index of `watchkeeper.store.clickhouse_logs` were chosen from this.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time

import orjson
from bench._machine import load, versions

from watchkeeper.model import LogRow
from watchkeeper.store import clickhouse_logs as chl

SERVICES = ("checkout", "search", "auth", "gateway", "llm-proxy", "billing", "worker", "mailer")
WORDS = (
    "request", "response", "cache", "miss", "hit", "retry", "upstream", "user", "order",
    "session", "token", "model", "latency", "queue", "batch", "connection", "pool",
)  # fmt: skip
TEMPLATES = (
    "GET /api/v{v}/orders/{n} took {ms}ms status={status} user={user} {words}",
    "calling model gpt-4o-mini prompt_tokens={n} completion_tokens={ms} cost={cost} {words}",
    "connection pool stats active={v} idle={ms} waiting={status} host=db-{user}.internal {words}",
    "job {n} finished in {ms} ms; processed {v} items for tenant {user}; {words}",
)
RARE, COMMON = "needle", "timeout"
WIDE = "min_bytes_for_wide_part = 0"


def _body(rng: random.Random, i: int) -> str:
    body = rng.choice(TEMPLATES).format(
        v=rng.randint(1, 9), n=rng.randint(1, 10**6), ms=rng.randint(1, 5000),
        status=rng.choice((200, 200, 200, 404, 500)), user=f"u{rng.randint(1, 5000)}",
        cost=f"{rng.random() / 100:.6f}", words=" ".join(rng.choices(WORDS, k=8)),
    )  # fmt: skip
    if rng.random() < 0.02:
        body += f" upstream {COMMON} after {rng.randint(1, 30)}s"
    if i % 20_000 == 7:
        body += f" a {RARE} in the haystack"
    return body[:220]


def _records(n: int, start_ns: int, seed: int = 7) -> list[LogRow]:
    """`n` records over the hour from `start_ns`, one project, eight services."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        service = SERVICES[i % len(SERVICES)]
        t = start_ns + i * (3_600 * 10**9 // n)
        traced = rng.random() < 0.3
        attrs = {f"attr.{k}": rng.choice((f"v{rng.randint(1, 50)}", rng.randint(1, 999)))
                 for k in range(10)}  # fmt: skip
        resource = {"service.name": service, "host.name": f"{service}-{i % 3}", "env": "prod"}
        sev = rng.choice((9, 9, 9, 9, 5, 13, 17))
        rows.append(LogRow(
            "bench", f"{i:016x}", t, t, sev, ("INFO", "DEBUG", "WARN", "ERROR")[sev // 5 % 4],
            _body(rng, i), f"{rng.getrandbits(128):032x}" if traced else "",
            f"{rng.getrandbits(64):016x}" if traced else "", service, "prod",
            f"{service}-{i % 3}", "app.logger", "", orjson.dumps(attrs).decode(),
            orjson.dumps(resource).decode(),
        ))  # fmt: skip
    return rows


def _copy(store: chl.ClickHouseLogStore, name: str, ddl: str) -> None:
    """The store's records in a sibling table `name` made by `ddl` (merged into one part)."""
    store._command(ddl.replace("IF NOT EXISTS logs ", f"IF NOT EXISTS {name} ", 1)
                   .replace("SETTINGS ", f"SETTINGS {WIDE}, ", 1))  # fmt: skip
    store._command(f"INSERT INTO {name} SELECT * FROM logs")
    store._command(f"OPTIMIZE TABLE {name} FINAL")


def codecs(store: chl.ClickHouseLogStore, n: int) -> None:
    """Bytes per record of the text columns under each codec."""
    print("\n## text columns: compressed bytes per record by codec")
    text = ("body", "attributes", "resource", "log_id", "trace_id", "span_id")
    print(f"{'codec':10s}" + "".join(f"{c:>12s}" for c in text) + f"{'all':>10s}")
    for codec in ("LZ4", "ZSTD(1)", "ZSTD(3)", "ZSTD(6)"):
        name = "c_" + codec.replace("(", "").replace(")", "").lower()
        _copy(store, name, chl.table_ddl(indexes=(), codecs={**chl.CODECS,
              **dict.fromkeys(text, codec)}))  # fmt: skip
        sizes = dict(store._rows(
            "SELECT name, data_compressed_bytes FROM system.columns "
            f"WHERE database = currentDatabase() AND table = '{name}'", {}))  # fmt: skip
        print(f"{codec:10s}" + "".join(f"{sizes[c] / n:12.1f}" for c in text)
              + f"{sum(sizes.values()) / n:10.1f}")  # fmt: skip


def _read_rows(store: chl.ClickHouseLogStore, table: str, word: str) -> tuple[int, int, float]:
    """(records found, rows to read, ms) of a word search on `table`; the rows are the
    engine's estimate after its indexes pruned the granules (`EXPLAIN ESTIMATE`: chDB keeps
    no `system.query_log`)."""
    where = (f"hasToken({chl.WORDS_EXPR}, '{word}') "
             f"AND match(body, '(?i)(^|[^\\\\pL\\\\pN_]){word}([^\\\\pL\\\\pN_]|$)')")  # fmt: skip
    t0 = time.perf_counter()
    ((found,),) = store._rows(f"SELECT count() FROM {table} WHERE {where}", {})
    ms = (time.perf_counter() - t0) * 1000
    estimate = store._rows(f"EXPLAIN ESTIMATE SELECT body FROM {table} WHERE {where}", {})
    return int(found), sum(int(r[3]) for r in estimate), ms


def search(store: chl.ClickHouseLogStore, n: int) -> None:
    """Rows a word search reads with each body index."""
    print("\n## word search: rows to read (EXPLAIN ESTIMATE) and index bytes per record")
    variants = {
        "text": chl.INDEXES[0],
        "tokenbf": f"INDEX body_words {chl.WORDS_EXPR} TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 1",
        "none": "",
    }
    print(f"{'index':10s}{'idx B/rec':>10s}" + "".join(
        f"{w + ' found':>14s}{'read':>10s}{'ms':>8s}" for w in (RARE, COMMON)))  # fmt: skip
    for name, index in variants.items():
        table = f"s_{name}"
        _copy(store, table, chl.table_ddl(indexes=(index,) if index else ()))
        ((idx,),) = store._rows(
            "SELECT sum(secondary_indices_compressed_bytes) FROM system.parts WHERE active "
            f"AND database = currentDatabase() AND table = '{table}'", {})  # fmt: skip
        line = f"{name:10s}{int(idx or 0) / n:10.2f}"
        for word in (RARE, COMMON):
            found, read, ms = _read_rows(store, table, word)
            line += f"{found:14d}{read:10d}{ms:8.1f}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    """Measure; print the tables."""
    ap = argparse.ArgumentParser(prog="python -m bench.log_store")
    ap.add_argument("--records", type=int, default=200_000)
    args = ap.parse_args(argv)
    print(f"# bench.log_store: {args.records} records; {versions(('chdb', 'pyarrow'))}; {load()}")
    with tempfile.TemporaryDirectory(prefix="wk-logbench-") as tmp:
        store = chl.ClickHouseLogStore(f"chdb://{tmp}/chdb", database="bench")
        try:
            rows = _records(args.records, time.time_ns() - 3_600 * 10**9)
            t0 = time.perf_counter()
            for i in range(0, len(rows), 20_000):
                store.write(rows[i : i + 20_000])
            print(f"written: {args.records / (time.perf_counter() - t0):,.0f} records/s")
            codecs(store, args.records)
            search(store, args.records)
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
