"""`LogsIngest`: OTLP log requests → durable spool → decode → the log store.

The guarantees of the other signals, through `SpooledWriter` (`<data_dir>/spool-logs`): a
request is decoded whole before it is acknowledged (so a body that is not one gets 400 and
records rejected one by one are counted for `partial_success`), appended to the spool, and
acknowledged once on disk; the writer decodes the record again and stores its rows. A
record without a time of its own gets the time its request was spooled, so a replay after a
crash stores the same rows, which the store keeps once (`LogRow.log_id`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from watchkeeper.config import Config
from watchkeeper.ingest._decode import Encoding, decompress, encoding_of
from watchkeeper.ingest._logs_decode import DecodedLogs, decode_logs
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
        self.write_seconds = Histogram(
            "watchkeeper_logs_store_write_seconds",
            "Time of one log store write.",
            registry=registry,
        )


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
        self._pipe = SpooledWriter(
            "log",
            config.server.data_dir,
            self._cfg,
            decode=self._decode_record,
            write=self._write,
            on_write_error=self.metrics.write_errors.inc,
            clock=clock,
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
        decoded = decode_logs(raw, encoding, project, now_ns, from_resource=project_from_resource)
        self.metrics.rejected.inc(decoded.rejected)
        result = IngestResult(len(decoded.records), decoded.rejected, decoded.error_message)
        if decoded.records:
            flags = FLAG_PROJECT_FROM_RESOURCE if project_from_resource else 0
            await self._pipe.append(Entry(project, encoding, raw, flags))
            self.metrics.accepted.inc(len(decoded.records))
        return result

    @staticmethod
    def _decode_record(rec: Record) -> DecodedLogs:
        encoding: Encoding = "json" if rec.content_type == "json" else "protobuf"
        from_resource = bool(rec.flags & FLAG_PROJECT_FROM_RESOURCE)
        return decode_logs(
            rec.body, encoding, rec.project, rec.appended_ns, from_resource=from_resource
        )

    def _write(self, _rec: Record, decoded: DecodedLogs) -> None:
        started = time.perf_counter()
        self.metrics.written.inc(self.store.write(decoded.records))
        self.metrics.write_seconds.observe(time.perf_counter() - started)
