"""Self-metrics of the ingest path, registered on the registry passed in."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
)
#: The lag around its budget (`ingest.lag_budget_s`, 5 s by default) in steps of a second or
#: so: in the latency buckets, everything near the budget fell in one 5-10 s bucket, and a p99
#: interpolated in it (bench.ingest flat out: 9.9 s) said little of where the lag was.
_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 7.5, 10, 15, 20, 30, 60, 120, 300)


class IngestMetrics:
    """Counters, gauges and histograms of one `IngestService`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        backlog_bytes: Callable[[], float],
        backlog_age_s: Callable[[], float],
        dead_letter_count: Callable[[], float],
        workers_running: Callable[[], float] = lambda: 0,
    ) -> None:
        self.spans_accepted = Counter(
            "watchkeeper_ingest_spans_accepted",
            "Spans acknowledged to senders (durable in the spool).",
            registry=registry,
        )
        self.spans_rejected = Counter(
            "watchkeeper_ingest_spans_rejected",
            "Spans not kept, by reason.",
            ["reason"],
            registry=registry,
        )
        self.spans_written = Counter(
            "watchkeeper_ingest_spans_written",
            "Spans handed to the store by the batch writer.",
            registry=registry,
        )
        self.requests = Counter(
            "watchkeeper_ingest_requests",
            "OTLP export requests, by HTTP status code answered.",
            ["code"],
            registry=registry,
        )
        self.queue_drops = Counter(
            "watchkeeper_ingest_queue_drops",
            "Requests turned away because a bounded queue was full, by queue.",
            ["queue"],
            registry=registry,
        )
        self.slow_clients = Counter(
            "watchkeeper_ingest_slow_clients",
            "Requests cut off because their headers or body did not arrive in time (408).",
            registry=registry,
        )
        self.store_write_errors = Counter(
            "watchkeeper_ingest_store_write_errors",
            "Failed store writes (the batch is retried; the spool keeps it).",
            registry=registry,
        )
        self.batch_write_seconds = Histogram(
            "watchkeeper_ingest_batch_write_seconds",
            "Time to write one batch to the store.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.lag_seconds = Histogram(
            "watchkeeper_ingest_lag_seconds",
            "From acknowledging a request to its spans being in the store.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        backlog = Gauge(
            "watchkeeper_ingest_spool_backlog_bytes",
            "Bytes in the spool not yet written to the store.",
            registry=registry,
        )
        backlog.set_function(backlog_bytes)
        age = Gauge(
            "watchkeeper_ingest_spool_backlog_age_seconds",
            "Age of the oldest spooled request not yet written to the store.",
            registry=registry,
        )
        age.set_function(backlog_age_s)
        self.dead_letter_records = Counter(
            "watchkeeper_ingest_dead_letter_records",
            "Spool records set aside (could not be processed or stored), by reason.",
            ["reason"],
            registry=registry,
        )
        self.dead_letter_spans = Counter(
            "watchkeeper_ingest_dead_letter_spans",
            "Spans in records set aside because the store refused them.",
            registry=registry,
        )
        held = Gauge(
            "watchkeeper_ingest_dead_letter_held_records",
            "Records in the dead letter now (replay: watchkeeper dead-letter replay).",
            registry=registry,
        )
        held.set_function(dead_letter_count)
        workers = Gauge(
            "watchkeeper_ingest_workers",
            "Decode worker processes running (they stop while ingest is idle: "
            "ingest.workers_idle_s).",
            registry=registry,
        )
        workers.set_function(workers_running)
