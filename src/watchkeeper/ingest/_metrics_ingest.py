"""`MetricsIngest`: OTLP metric and Prometheus remote-write requests → durable spool →
decode → the metric store.

The guarantees of the trace path, with its parts: a request is validated (decoded whole),
appended to a spool (`<data_dir>/spool-metrics`, the same `Spool` and `GroupCommitter`)
and acknowledged only once it is on disk; one writer thread reads the spool from its
checkpoint, decodes each record and writes its samples, then moves the checkpoint. Replay
after a crash stores nothing twice: the store ignores a sample its series already holds.

A spool of its own rather than records in the span spool: the span processor, its worker
processes and its batches are built around spans, and samples need none of it (decoding a
metric request is cheap and the store write is the cost). Admission follows the writer as
for traces (`ingest.lag_budget_s`, `ingest.spool_max_backlog_bytes`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchkeeper.config import Config
from watchkeeper.errors import Overloaded, StoreError
from watchkeeper.ingest._commit import GroupCommitter
from watchkeeper.ingest._dead_letter import DeadLetter
from watchkeeper.ingest._decode import decompress, encoding_of
from watchkeeper.ingest._metrics_decode import DecodedMetrics, decode_metrics
from watchkeeper.ingest._remote_write import decode_remote_write, unsnappy
from watchkeeper.ingest._service import IngestResult
from watchkeeper.ingest._spool import FLAG_PROJECT_FROM_RESOURCE, Entry, Record, Spool
from watchkeeper.model import Metadata, Sample
from watchkeeper.store.metrics import MetricsStore

log = logging.getLogger("watchkeeper.ingest.metrics")

_READ_CHUNK = 4 * 1024 * 1024
_RETRY_MAX_S = 5.0
#: The spool's content type of a remote-write body (OTLP bodies keep "protobuf"/"json"),
#: and of samples made in this process (`encode_samples`).
REMOTE_WRITE = "prometheus-remote-write"
SAMPLES = "watchkeeper-samples"
_SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}
_DATA_ATTEMPTS = 3  # failed writes of one record, not the store's fault, before it is set aside


class MetricsIngestMetrics:
    """Counters of the metric ingest path, on the server's health registry."""

    def __init__(self, registry: CollectorRegistry, store: MetricsStore) -> None:
        self.points_accepted = Counter(
            "watchkeeper_metrics_points_accepted",
            "OTLP metric data points acknowledged to senders (durable in the spool).",
            registry=registry,
        )
        self.points_rejected = Counter(
            "watchkeeper_metrics_points_rejected",
            "OTLP metric data points rejected at the door (partial_success).",
            registry=registry,
        )
        self.samples_written = Counter(
            "watchkeeper_metrics_samples_written",
            "Samples stored in the metric store.",
            registry=registry,
        )
        self.samples_dropped = Counter(
            "watchkeeper_metrics_samples_dropped",
            "Samples not stored, by reason: out_of_order, duplicate (ignored, as Prometheus "
            "does), duplicate_timestamp, series_limit (metrics.max_series_per_project).",
            ["reason"],
            registry=registry,
        )
        self.write_errors = Counter(
            "watchkeeper_metrics_store_write_errors",
            "Failed metric store writes (retried).",
            registry=registry,
        )
        self.write_seconds = Histogram(
            "watchkeeper_metrics_store_write_seconds",
            "Time of one metric store write.",
            registry=registry,
        )
        series = Gauge(
            "watchkeeper_metrics_series",
            "Series in the metric store, all projects together.",
            registry=registry,
        )
        series.set_function(lambda: sum(store.stats().values()))


class MetricsIngest:
    """The metric ingest path of one server process; see the module docstring."""

    def __init__(
        self,
        config: Config,
        store: MetricsStore,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cfg = config.ingest
        self.store = store
        self._clock = clock
        self.spool = Spool(
            config.server.data_dir / "spool-metrics",
            segment_bytes=self._cfg.spool_segment_bytes,
            clock=clock,
        )
        self._committer = GroupCommitter(self.spool, group_commit_s=self._cfg.group_commit_ms / 1e3)
        self.dead_letter = DeadLetter(config.server.data_dir / "dead-letter-metrics")
        self.metrics = MetricsIngestMetrics(registry, store)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._written = threading.Condition()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (recovering it) and start the committer and the writer."""
        if self._thread is not None:
            return
        self.spool.open()
        self._committer.start()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="wk-metrics-write", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse new requests, store everything spooled, and stop."""
        if self._thread is None:
            return
        self._committer.stop()
        self._stopping.set()
        self._thread.join()
        self._thread = None
        self.spool.close()

    # --- the request path -------------------------------------------------------------------

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
        if self._thread is None:
            raise Overloaded("ingest is not running (starting or stopping); retry shortly", 1.0)
        encoding = encoding_of(content_type)
        raw = decompress(body, content_encoding, self._cfg.max_body_bytes)
        self._check_backlog()
        flags = FLAG_PROJECT_FROM_RESOURCE if project_from_resource else 0
        return await self._spool(project, encoding, raw, decode_metrics(raw, encoding), flags)

    async def accept_remote_write(self, project: str, body: bytes) -> IngestResult:
        """A Prometheus remote-write body (snappy): validate, spool durably, count."""
        if self._thread is None:
            raise Overloaded("ingest is not running (starting or stopping); retry shortly", 1.0)
        raw = unsnappy(body, self._cfg.max_body_bytes)
        self._check_backlog()
        return await self._spool(project, REMOTE_WRITE, raw, decode_remote_write(raw), 0)

    async def accept_samples(
        self, project: str, samples: list[Sample], metadata: dict[str, Metadata]
    ) -> IngestResult:
        """Samples made in this process (the scraper): spooled like a request."""
        if self._thread is None:
            raise Overloaded("ingest is not running (starting or stopping); retry shortly", 1.0)
        self._check_backlog()
        decoded = DecodedMetrics(samples=samples, metadata=metadata, points=len(samples))
        return await self._spool(project, SAMPLES, encode_samples(samples, metadata), decoded, 0)

    async def _spool(
        self, project: str, kind: str, raw: bytes, decoded: DecodedMetrics, flags: int
    ) -> IngestResult:
        self.metrics.points_rejected.inc(decoded.rejected)
        result = IngestResult(decoded.points, decoded.rejected, decoded.error_message)
        if not decoded.points and not decoded.metadata:  # remote-write sends metadata alone
            return result
        (fut,) = self._committer.submit(Entry(project, kind, raw, flags))
        await asyncio.wrap_future(fut)
        self.metrics.points_accepted.inc(decoded.points)
        return result

    def _check_backlog(self) -> None:
        if self.spool.backlog_bytes() > self._cfg.spool_max_backlog_bytes:
            raise Overloaded("metric ingest backlog is full; retry later", retry_after=2.0)
        budget = self._cfg.lag_budget_s
        oldest = self.spool.oldest_unstored_ns()
        lag = 0.0 if oldest is None else self._clock() - oldest / 1e9
        if budget > 0 and lag > budget:
            raise Overloaded(
                f"the metric store is {lag:.1f} s behind, over the {budget:g} s lag budget; "
                "retry shortly",
                retry_after=min(max(1.0, lag - budget), budget),
            )

    def flush(self, timeout: float) -> bool:
        """Block until everything acknowledged so far is stored; False on timeout."""
        if self._thread is None:
            return True
        target = self.spool.end
        deadline = time.monotonic() + timeout
        with self._written:
            while not self.spool.is_stored(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._written.wait(min(remaining, 0.05))
        return True

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        cursor = self.spool.checkpoint
        while True:
            stopping = self._stopping.is_set()
            for rec in self.spool.read(cursor, _READ_CHUNK):
                if not self._store(rec):
                    return  # stopping while the store fails: the spool replays it next start
                cursor = rec.end
                self.spool.set_checkpoint(cursor)
                with self._written:
                    self._written.notify_all()
            if stopping and not self.spool.has_after(cursor):
                return
            self.spool.wait_for(cursor, 0.05)

    def _store(self, rec: Record) -> bool:
        """Decode and write one record; False only when stopping interrupts retries."""
        try:
            decoded = _decode(rec.body, rec.content_type)
        except Exception as exc:  # validated before it was spooled: a corrupt record
            log.error("metric spool record before %s cannot be decoded: %s", rec.end, exc)
            self.dead_letter.add(rec, f"decode_error: {exc}")
            return True
        delay, refused = 0.1, 0
        while True:
            try:
                self._write(rec, decoded)
                return True
            except Exception as exc:
                self.metrics.write_errors.inc()
                if not isinstance(exc, (StoreError, OSError, MemoryError)):
                    refused += 1
                if refused >= _DATA_ATTEMPTS:
                    log.error("the metric store refused the record before %s: %s", rec.end, exc)
                    self.dead_letter.add(rec, f"store_refused: {exc}")
                    return True
                log.error("metric store write failed; retrying: %s", exc)
                if self._stopping.is_set():
                    return False
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    def _write(self, rec: Record, decoded: DecodedMetrics) -> None:
        by_project: dict[str, list[Sample]] = {}
        from_resource = bool(rec.flags & FLAG_PROJECT_FROM_RESOURCE)
        for i, sample in enumerate(decoded.samples):
            project = decoded.projects.get(i, rec.project) if from_resource else rec.project
            by_project.setdefault(project, []).append(sample)
        if not by_project and decoded.metadata:
            by_project[rec.project] = []
        for project, samples in by_project.items():
            meta = decoded.metadata
            if len(by_project) > 1:  # a request of several projects (auth off)
                meta = _metadata_of(meta, samples)
            started = time.perf_counter()
            result = self.store.write(project, samples, meta)
            self.metrics.write_seconds.observe(time.perf_counter() - started)
            self.metrics.samples_written.inc(result.written)
            for reason, n in result.rejected.items():
                self.metrics.samples_dropped.labels(reason).inc(n)


def _value(v: float | None) -> float | str | None:
    if v is None or math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")


def encode_samples(samples: list[Sample], metadata: dict[str, Metadata]) -> bytes:
    """Samples as spooled: JSON, non-finite values as strings, a stale sample as null."""
    return orjson.dumps(
        {
            "samples": [[s.labels, s.t_ms, _value(s.value)] for s in samples],
            "metadata": {name: [m.type, m.unit, m.help] for name, m in metadata.items()},
        }
    )


def decode_samples(body: bytes) -> DecodedMetrics:
    """What `encode_samples` wrote."""
    doc = orjson.loads(body)
    samples = [
        Sample(tuple((k, v) for k, v in labels), t, _SPECIAL[v] if isinstance(v, str) else v)
        for labels, t, v in doc["samples"]
    ]
    metadata = {name: Metadata(*m) for name, m in doc["metadata"].items()}
    return DecodedMetrics(samples=samples, metadata=metadata, points=len(samples))


def _decode(body: bytes, kind: str) -> DecodedMetrics:
    """A spooled record's samples, by the kind of body it holds."""
    if kind == REMOTE_WRITE:
        return decode_remote_write(body)
    if kind == SAMPLES:
        return decode_samples(body)
    return decode_metrics(body, kind)


def _metadata_of(metadata: dict[str, Metadata], samples: list[Sample]) -> dict[str, Metadata]:
    """The metadata of the metrics these samples belong to (a histogram's under its base)."""
    names = {s.name for s in samples}
    return {
        m: meta
        for m, meta in metadata.items()
        if m in names or any(n.startswith(m + "_") for n in names)
    }
