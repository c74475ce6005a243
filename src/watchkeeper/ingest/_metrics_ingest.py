"""`MetricsIngest`: OTLP metric and Prometheus remote-write requests → durable spool →
decode → the metric store.

The guarantees of the trace path, through `SpooledWriter` (`<data_dir>/spool-metrics`): a
request is validated (decoded whole), appended to the spool and acknowledged only once it
is on disk; one writer thread decodes each record (or takes what the door decoded of the
same record, `Handoff`) and writes its samples, then moves the checkpoint. Replay after a
crash stores nothing twice: the store ignores a sample its series already holds.

A spool of its own rather than records in the span spool: the span processor, its worker
processes and its batches are built around spans, and samples need none of it (decoding a
metric request is cheap and the store write is the cost).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchkeeper.config import Config
from watchkeeper.ingest._handoff import Handoff
from watchkeeper.ingest._metrics_decode import DecodedMetrics, PointLabels, decode_metrics
from watchkeeper.ingest._otlp_values import decompress, encoding_of
from watchkeeper.ingest._remote_write import LabelCache, decode_remote_write, unsnappy
from watchkeeper.ingest._service import IngestResult
from watchkeeper.ingest._spool import FLAG_PROJECT_FROM_RESOURCE, Entry, Record
from watchkeeper.ingest._spooled import SpooledSignal, SpooledWriter
from watchkeeper.model import Metadata, Sample
from watchkeeper.store.metrics import MetricsStore, SampleColumns, WriteResult

log = logging.getLogger("watchkeeper.ingest.metrics")

#: The spool's content type of a remote-write body (OTLP bodies keep "protobuf"/"json"),
#: and of samples made in this process (`encode_samples`).
REMOTE_WRITE = "prometheus-remote-write"
SAMPLES = "watchkeeper-samples"
#: Samples decoded at the door held for the writer, at most (`Handoff`).
HANDOFF_SAMPLES = 2_000_000
_SPECIAL = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}


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
        due = Gauge(
            "watchkeeper_metrics_compaction_due",
            "1 while a 2-hour block of samples that is over waits to be compacted into "
            "per-series chunks (the writer moves it a step at a time).",
            registry=registry,
        )
        due.set_function(lambda: float(store.compaction_due()))


class MetricsIngest(SpooledSignal):
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
        self.metrics = MetricsIngestMetrics(registry, store)
        # the request path and the writer read the same series
        self._labels, self._points = LabelCache(), PointLabels()
        self._handoff: Handoff[DecodedMetrics] = Handoff(HANDOFF_SAMPLES)
        self._pipe = SpooledWriter(
            "metric",
            config.server.data_dir,
            self._cfg,
            decode=self._decode,
            write=self._write,
            on_write_error=self.metrics.write_errors.inc,
            write_many=self._write_many,
            clock=clock,
            idle=lambda: store.maintain(idle=True),
        )

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
        self._pipe.admit()
        encoding = encoding_of(content_type)
        raw = decompress(body, content_encoding, self._cfg.max_body_bytes)
        flags = FLAG_PROJECT_FROM_RESOURCE if project_from_resource else 0
        decoded = decode_metrics(raw, encoding, self._points)
        return await self._spool(project, encoding, raw, decoded, flags)

    async def accept_remote_write(self, project: str, body: bytes) -> IngestResult:
        """A Prometheus remote-write body (snappy): validate, spool durably, count."""
        self._pipe.admit()
        raw = unsnappy(body, self._cfg.max_body_bytes)
        decoded = decode_remote_write(raw, self._labels)
        return await self._spool(project, REMOTE_WRITE, raw, decoded, 0)

    async def accept_samples(
        self, project: str, samples: list[Sample], metadata: dict[str, Metadata]
    ) -> IngestResult:
        """Samples made in this process (the scraper): spooled like a request."""
        self._pipe.admit()
        decoded = DecodedMetrics(samples=samples, metadata=metadata, points=len(samples))
        return await self._spool(project, SAMPLES, encode_samples(samples, metadata), decoded, 0)

    async def _spool(
        self, project: str, kind: str, raw: bytes, decoded: DecodedMetrics, flags: int
    ) -> IngestResult:
        self.metrics.points_rejected.inc(decoded.rejected)
        result = IngestResult(decoded.points, decoded.rejected, decoded.error_message)
        if not decoded.points and not decoded.metadata:  # remote-write sends metadata alone
            return result
        entry = Entry(project, kind, raw, flags)
        with self._handoff.keeping(entry, decoded, max(decoded.points, 1)):
            await self._pipe.append(entry)
        self.metrics.points_accepted.inc(decoded.points)
        return result

    def _decode(self, rec: Record) -> DecodedMetrics:
        kept = self._handoff.take_for(rec)
        return kept or _decode(rec.body, rec.content_type, self._labels, self._points)

    def _write(self, rec: Record, decoded: DecodedMetrics) -> None:
        self._write_many([(rec, decoded)])

    def _write_many(self, group: list[tuple[Record, DecodedMetrics]]) -> None:
        """Records read together (in spool order): one store write per project, so the
        fixed cost of a write is paid once for them all."""
        columns: dict[str, list[SampleColumns]] = {}
        metadata: dict[str, dict[str, Metadata]] = {}
        for rec, decoded in group:
            for project, cols, meta in _parts(rec, decoded):
                columns.setdefault(project, []).append(cols)
                metadata.setdefault(project, {}).update(meta)
        for project, parts in columns.items():
            cols = parts[0] if len(parts) == 1 else SampleColumns.concat(parts)
            self._count(self.store.write_columns(project, cols, metadata[project]))

    def _count(self, result: WriteResult) -> None:
        self.metrics.write_seconds.observe(result.seconds)
        self.metrics.samples_written.inc(result.written)
        for reason, n in result.rejected.items():
            self.metrics.samples_dropped.labels(reason).inc(n)


def _parts(
    rec: Record, decoded: DecodedMetrics
) -> Iterator[tuple[str, SampleColumns, dict[str, Metadata]]]:
    """A record's samples by project, as columns, with the metadata of each project's."""
    cols = decoded.columns
    if cols is None:  # samples made in this process
        cols = SampleColumns.from_samples(decoded.samples)
    if not (rec.flags & FLAG_PROJECT_FROM_RESOURCE and decoded.projects):
        yield rec.project, cols, decoded.metadata
        return
    projects = np.full(len(cols), rec.project, dtype=object)  # some name their own (auth off)
    projects[list(decoded.projects)] = list(decoded.projects.values())
    names = sorted(set(projects.tolist()))
    for project in names:
        part = cols.take(np.flatnonzero(projects == project))
        meta = decoded.metadata
        if len(names) > 1:
            meta = _metadata_of(meta, {dict(labels)["__name__"] for labels in part.series})
        yield project, part, meta


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


def _decode(body: bytes, kind: str, labels: LabelCache, points: PointLabels) -> DecodedMetrics:
    """A spooled record's samples, by the kind of body it holds."""
    if kind == REMOTE_WRITE:
        return decode_remote_write(body, labels)
    if kind == SAMPLES:
        return decode_samples(body)
    return decode_metrics(body, kind, points)


def _metadata_of(metadata: dict[str, Metadata], names: set[str]) -> dict[str, Metadata]:
    """The metadata of these metrics (a histogram's under its base name)."""
    return {
        m: meta
        for m, meta in metadata.items()
        if m in names or any(n.startswith(m + "_") for n in names)
    }
