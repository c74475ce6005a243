"""`LogsIngest`: OTLP log requests → durable spool → decode → the log store.

The guarantees of the other signals, through `SpooledWriter` (`<data_dir>/spool-logs`): a
request is decoded whole before it is acknowledged (so a body that is not one gets 400 and
records rejected one by one are counted for `partial_success`), held to its project's rate
limit (`logs.rate_limit_records_per_s`: 429), appended to the spool, and acknowledged once
on disk. The writer stores the rows decoded at the door (`Handoff`), decoding the spooled
bytes only when they are not there (a replay after a restart), several requests in one
store write when it finds them waiting. A record without a time of
its own gets the time its request was spooled, so a replay after a crash stores the same
rows, which the store keeps once (`LogRow.log_id`).

A large request is decoded in a worker process (`logs.decode_workers`, `_offload`): ~10 µs
a record of Python that, in the server, held the interpreter's lock on the thread that
serves HTTP while the writer waited for it. The rows come back as Arrow columns.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Histogram

from watchkeeper.config import Config
from watchkeeper.errors import RateLimited
from watchkeeper.ingest._handoff import Handoff
from watchkeeper.ingest._logs_decode import DecodedLogs, decode_logs
from watchkeeper.ingest._offload import Offload
from watchkeeper.ingest._otlp_values import Encoding, decompress, encoding_of
from watchkeeper.ingest._rate_limit import RecordRate
from watchkeeper.ingest._service import IngestResult
from watchkeeper.ingest._spool import FLAG_PROJECT_FROM_RESOURCE, Entry, Record
from watchkeeper.ingest._spooled import SpooledSignal, SpooledWriter
from watchkeeper.store.logs import LogStore


class LogsIngestMetrics:
    """Counters of the log ingest path, on the server's health registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "watchkeeper_logs_records_accepted",
            "Log records acknowledged to senders (durable in the spool).",
            registry=registry,
        )
        self.rejected = Counter(
            "watchkeeper_logs_records_rejected",
            "Log records rejected at the door (partial_success).",
            registry=registry,
        )
        self.written = Counter(
            "watchkeeper_logs_records_written",
            "Log records stored (a re-delivered one is stored once and counted once).",
            registry=registry,
        )
        self.write_errors = Counter(
            "watchkeeper_logs_store_write_errors",
            "Failed log store writes (retried).",
            registry=registry,
        )
        self.rate_limited = Counter(
            "watchkeeper_logs_records_rate_limited",
            "Log records answered 429: their project was over logs.rate_limit_records_per_s.",
            registry=registry,
        )
        self.decoded_twice = Counter(
            "watchkeeper_logs_requests_decoded_in_writer",
            "Spooled log requests the writer decoded itself (a replay, or past the handoff).",
            registry=registry,
        )
        self.write_seconds = Histogram(
            "watchkeeper_logs_store_write_seconds",
            "Time of one log store write.",
            registry=registry,
        )


#: Spooled requests written in one store write at most, when the writer finds several
#: waiting: one transaction for all (`python -m bench.logs`: 500-record writes cost DuckDB
#: 2-4x more per record than 5,000-record ones; 300k bench records in one process, a
#: checkpoint per row group: groups of 16 requests 13.6-13.9 µs of CPU a record, of 32
#: 11.3-11.5). A writer that keeps up writes what lingering gathered, fewer.
WRITE_GROUP = 32
#: How long the writer, once it has caught up, lets requests gather after a write began
#: before the next: a DuckDB log write costs ~60 µs a record at 500 records, ~20 at 4,000
#: (the SQL of the block filters, the commit); a record waits that much longer to be found.
WRITE_LINGER_S = 0.25
#: Records decoded at the door and held for the writer, at most (~1 KB each in memory):
#: past it the writer decodes from the spool.
HANDOFF_RECORDS = 50_000
#: Requests from this size up (decompressed) are decoded in a worker process when
#: `logs.decode_workers` allows: below it, the hand-over costs more than the decode.
OFFLOAD_BYTES = 64 * 1024


class LogsIngest(SpooledSignal):
    """The log ingest path of one server process; see the module docstring."""

    def __init__(
        self,
        config: Config,
        store: LogStore,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cfg = config.ingest
        self.store = store
        self._clock = clock
        self.metrics = LogsIngestMetrics(registry)
        limit = config.logs.rate_limit_records_per_s
        self._rate = RecordRate(limit, config.logs.rate_limit_burst_s) if limit else None
        self._handoff: Handoff[DecodedLogs] = Handoff(HANDOFF_RECORDS)
        workers, idle_s = config.logs.decode_workers, self._cfg.workers_idle_s or None
        self.decoders = Offload(workers, idle_s=idle_s) if workers else None
        self._pipe = SpooledWriter(
            "log",
            config.server.data_dir,
            self._cfg,
            decode=self._decode_record,
            write=self._write,
            on_write_error=self.metrics.write_errors.inc,
            clock=clock,
            write_many=self._write_many,
            group=WRITE_GROUP,
            linger_s=WRITE_LINGER_S,
        )

    async def accept(
        self,
        project: str,
        body: bytes,
        content_type: str,
        content_encoding: str | None,
        *,
        project_from_resource: bool = False,
    ) -> IngestResult:
        """Validate, spool durably, and return the counts; raises the errors of the route."""
        self._pipe.admit()
        encoding = encoding_of(content_type)
        raw = decompress(body, content_encoding, self._cfg.max_body_bytes)
        now_ns = int(self._clock() * 1e9)
        decode = functools.partial(decode_logs, from_resource=project_from_resource)
        if self.decoders is None or len(raw) < OFFLOAD_BYTES:
            decoded = decode(raw, encoding, project, now_ns)
        else:
            decoded = await self.decoders.run(decode, raw, encoding, project, now_ns)
        self._limit(decoded)
        self.metrics.rejected.inc(decoded.rejected)
        result = IngestResult(decoded.count, decoded.rejected, decoded.error_message)
        if decoded.count:
            flags = FLAG_PROJECT_FROM_RESOURCE if project_from_resource else 0
            entry = Entry(project, encoding, raw, flags)
            # rows timed at receipt would get another time from a replay's decode: not kept
            kept = None if decoded.receipt_timed else decoded
            with self._handoff.keeping(entry, kept, decoded.count):
                await self._pipe.append(entry)
            self.metrics.accepted.inc(decoded.count)
        return result

    def stop(self) -> None:
        """Refuse new requests, store everything spooled, stop the decoders and the writer."""
        super().stop()
        if self.decoders is not None:
            self.decoders.close()

    def _limit(self, decoded: DecodedLogs) -> None:
        """`RateLimited` (429) when a project of the records is over its rate."""
        if self._rate is None or not decoded.count:
            return
        projects = decoded.table["project"].value_counts()
        counts = {str(p): int(n) for p, n in zip(*projects.flatten(), strict=True)}
        wait = self._rate.take(counts)
        if wait:
            self.metrics.rate_limited.inc(decoded.count)
            raise RateLimited(
                f"over the log rate limit of {self._rate.per_s:g} records/s per project "
                "(logs.rate_limit_records_per_s); retry after Retry-After",
                wait,
            )

    def _decode_record(self, rec: Record) -> DecodedLogs:
        kept = self._handoff.take_for(rec)
        if kept is not None:
            return kept
        self.metrics.decoded_twice.inc()
        encoding: Encoding = "json" if rec.content_type == "json" else "protobuf"
        from_resource = bool(rec.flags & FLAG_PROJECT_FROM_RESOURCE)
        return decode_logs(
            rec.body, encoding, rec.project, rec.appended_ns, from_resource=from_resource
        )

    def _write(self, _rec: Record, decoded: DecodedLogs) -> None:
        started = time.perf_counter()
        self.metrics.written.inc(self.store.write_table(decoded.table))
        self.metrics.write_seconds.observe(time.perf_counter() - started)

    def _write_many(self, group: list[tuple[Record, DecodedLogs]]) -> None:
        started = time.perf_counter()
        table = pa.concat_tables([decoded.table for _, decoded in group])
        self.metrics.written.inc(self.store.write_table(table))
        self.metrics.write_seconds.observe(time.perf_counter() - started)
