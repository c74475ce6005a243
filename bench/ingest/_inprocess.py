"""The ingest pipeline alone, in this process: accept → spool → decode/normalize → store.

`--store null` swaps the span store for one that only counts, which shows what the ingest
path itself can carry; `--store duckdb` uses the real store on a file, `--store clickhouse`
the ClickHouse store on chDB. No HTTP is involved.
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path

from bench.ingest._workload import stamp, template
from prometheus_client import CollectorRegistry

from watchkeeper.config import load_config
from watchkeeper.errors import Overloaded
from watchkeeper.ingest import IngestService
from watchkeeper.model import SpanBatch


class CountingStore:
    """A store that keeps nothing: `write` counts spans (measures the pipeline alone)."""

    def __init__(self) -> None:
        self.spans = 0

    def write(self, batch: SpanBatch) -> int:
        """Count the batch."""
        self.spans += len(batch)
        return len(batch)


async def _feed(service: IngestService, bodies: list[bytes], requests: int, senders: int) -> None:
    next_no = iter(range(requests))

    async def sender() -> None:
        for no in next_no:
            body = stamp(bodies[no % len(bodies)], no, 42)
            while True:  # as an OTLP exporter does: wait as told, then send again
                try:
                    await service.accept("default", body, "application/x-protobuf", None)
                    break
                except Overloaded as exc:
                    await asyncio.sleep(exc.retry_after)

    await asyncio.gather(*(sender() for _ in range(senders)))


def run(spans: int, per: int, store_kind: str) -> None:
    """Push `spans` spans through an in-process IngestService and print the rates."""
    tmp = Path(tempfile.mkdtemp(prefix="wk-bench-inproc-"))
    config = load_config(env={}, overrides={"server": {"data_dir": str(tmp)}})
    if store_kind == "null":
        store: object = CountingStore()
    elif store_kind == "clickhouse":  # the engine in this process (chDB), as --engine runs it
        from watchkeeper.store.clickhouse import ClickHouseStore

        store = ClickHouseStore(f"chdb://{tmp / 'chdb'}")
    else:
        from watchkeeper.store.duckdb import DuckDBStore

        store = DuckDBStore(tmp / "spans.duckdb")
    service = IngestService(config, store, CollectorRegistry())  # type: ignore[arg-type]
    service.start()
    bodies = [template(seed, per) for seed in range(8)]
    requests = -(-spans // per)
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(_feed(service, bodies, requests, 4))
    acked = time.perf_counter() - wall
    assert service.flush(3600)
    done, cpu_used = time.perf_counter() - wall, time.process_time() - cpu
    service.stop()
    total = requests * per
    print(
        f"in-process, store={store_kind}: {total} spans; acknowledged at "
        f"{total / acked:,.0f} spans/s, written at {total / done:,.0f} spans/s; "
        f"CPU {cpu_used / total * 1e6:.0f} µs/span (all threads); "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
