"""Prometheus metrics the SDK records on the app (one set per registry).

Names and buckets follow the OpenTelemetry semantic conventions (HTTP and GenAI) as Prometheus
exposes them. Durations that have a deadline (guards, HTTP requests) use `DeadlineHistogram`,
whose series each carry their own deadline as a bucket boundary, so "share of calls under the
deadline" is an exact bucket ratio. No user id, session id or prompt is ever a label.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from watchkeeper.model import OUTCOMES
from watchkeeper.sdk._breaker import BREAKER_STATES, Breaker
from watchkeeper.sdk._workers import all_workers

#: GenAI semconv `gen_ai.client.operation.duration` boundaries, plus our default deadline (8 s).
GENAI_DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 8.0, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
#: GenAI semconv `gen_ai.client.token.usage` boundaries.
GENAI_TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
#: HTTP semconv `http.server.request.duration` boundaries.
HTTP_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: Guard durations: fine below a second (where fast calls live), then every second to 10 s.
GUARD_DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0,
    7.0, 8.0, 9.0, 10.0,
)  # fmt: skip


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it ("0.005", "8.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _bounds_with(base: tuple[float, ...], deadline: float | None) -> tuple[float, ...]:
    """The base bucket bounds with `deadline` added as one of them."""
    if deadline is None or deadline in base:
        return base
    return tuple(sorted((*base, float(deadline))))


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last one +Inf) as the exposition format's cumulative buckets."""
    total, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        total += count
        buckets.append((_le(bound), float(total)))
    return buckets


class _Series:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def add(self, value: float) -> None:
        """Count `value` (the caller holds the lock)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class DeadlineHistogram:
    """A labelled histogram whose series each add their own deadline to the base buckets."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        base_buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self._doc = documentation
        self._labelnames = tuple(labelnames)
        self._base = tuple(sorted(base_buckets))
        self._series: dict[tuple[str, ...], _Series] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, labels: tuple[str, ...], value: float, deadline: float | None) -> None:
        """Count `value` (seconds) in the series for `labels`, created with `deadline` a bound."""
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _Series(_bounds_with(self._base, deadline))
            series.add(value)

    def describe(self) -> Iterable[Metric]:
        """The family without samples (lets the registry check for name clashes)."""
        return [HistogramMetricFamily(self.name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterable[Metric]:
        """Cumulative buckets of every series, in the exposition format's shape."""
        family = HistogramMetricFamily(self.name, self._doc, labels=self._labelnames)
        with self._lock:
            snapshot = [(k, s.bounds, list(s.counts), s.total) for k, s in self._series.items()]
        for labels, bounds, counts, total in snapshot:
            family.add_metric(list(labels), _cumulative(bounds, counts), total)
        return [family]


class GuardSeries:
    """One guard's calls by outcome, its duration buckets and its breaker (see `GuardMetrics`)."""

    __slots__ = ("_lock", "breaker", "duration", "outcomes")

    def __init__(
        self, lock: threading.Lock, bounds: tuple[float, ...], breaker: Breaker | None
    ) -> None:
        self._lock = lock
        self.outcomes = dict.fromkeys(OUTCOMES, 0)  # every outcome shows, at 0 until it happens
        self.duration = _Series(bounds)
        self.breaker = breaker

    def record(self, outcome: str, seconds: float) -> None:
        """Count one call that ended in `outcome` after `seconds`."""
        with self._lock:
            self.outcomes[outcome] += 1
            self.duration.add(seconds)


class GuardMetrics:
    """`watchkeeper_guard_calls_total{name,outcome}` and `watchkeeper_guard_duration_seconds{name}`
    (the guard's deadline a bucket bound), recorded together: one call and one lock per guarded
    call, where a Counter and a histogram take two of each. `watchkeeper_guard_breaker_state`
    is read from the breakers when scraped: nothing per call, and an open breaker whose reset
    timeout has passed reads half-open before any call tries it."""

    CALLS = "watchkeeper_guard_calls"
    DURATION = "watchkeeper_guard_duration_seconds"
    _CALLS_DOC = "Guarded calls by outcome (success, timeout, error, fallback, rejected)."
    _DURATION_DOC = "Duration of guarded calls; the guard's deadline is a bucket boundary."
    BREAKER = "watchkeeper_guard_breaker_state"
    _BREAKER_DOC = "Circuit breaker state per guard: 0 closed, 1 open, 2 half-open."

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, GuardSeries] = {}
        registry.register(self)

    def series(self, name: str, deadline: float, breaker: Breaker | None) -> GuardSeries:
        """The series of guard `name` (its buckets and breaker are the first guard's)."""
        with self._lock:
            found = self._series.get(name)
            if found is None:
                bounds = _bounds_with(GUARD_DURATION_BUCKETS, deadline)
                found = self._series[name] = GuardSeries(self._lock, bounds, breaker)
            return found

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(self.CALLS, self._CALLS_DOC, labels=("name", "outcome")),
            HistogramMetricFamily(self.DURATION, self._DURATION_DOC, labels=("name",)),
            GaugeMetricFamily(self.BREAKER, self._BREAKER_DOC, labels=("name",)),
        )

    def describe(self) -> Iterable[Metric]:
        """The families without samples (lets the registry check for name clashes)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """The three families, calls and durations from one consistent snapshot."""
        calls, duration, breakers = self._families()
        with self._lock:
            snapshot = [
                (
                    name,
                    dict(s.outcomes),
                    s.duration.bounds,
                    list(s.duration.counts),
                    s.duration.total,
                )
                for name, s in self._series.items()
            ]
            with_breakers = [(name, s.breaker) for name, s in self._series.items() if s.breaker]
        for name, outcomes, bounds, counts, total in snapshot:
            for outcome, count in outcomes.items():
                calls.add_metric([name, outcome], count)
            duration.add_metric([name], _cumulative(bounds, counts), total)
        for name, breaker in with_breakers:
            breakers.add_metric([name], BREAKER_STATES[breaker.state])
        return [calls, duration, breakers]


class WorkerMetrics:
    """The guard worker threads, read from the pools when scraped (nothing per call):
    `watchkeeper_guard_worker_threads{state}` (busy, idle),
    `watchkeeper_guard_abandoned_threads{name}` (threads still running a call whose caller
    stopped waiting at its deadline) and `watchkeeper_guard_abandoned_calls_total{name}`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(
                "watchkeeper_guard_worker_threads",
                "Threads of the guards' worker pools, by state (busy, idle).",
                labels=("state",),
            ),
            GaugeMetricFamily(
                "watchkeeper_guard_abandoned_threads",
                "Guard worker threads still running a call abandoned at its deadline.",
                labels=("name",),
            ),
            CounterMetricFamily(
                "watchkeeper_guard_abandoned_calls",
                "Guarded sync calls abandoned at their deadline, still running on a worker.",
                labels=("name",),
            ),
        )

    def describe(self) -> Iterable[Metric]:
        """The families without samples (lets the registry check for name clashes)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Sums over every pool in the process."""
        threads, abandoned, abandoned_total = self._families()
        busy = idle = 0
        now: dict[str, int] = {}
        total: dict[str, int] = {}
        for pool in all_workers():
            pool_busy = pool.busy()
            busy += pool_busy
            idle += pool.threads - pool_busy
            for name, count in list(pool.abandoned.items()):
                now[name] = now.get(name, 0) + count
            for name, count in list(pool.abandoned_total.items()):
                total[name] = total.get(name, 0) + count
        threads.add_metric(["busy"], busy)
        threads.add_metric(["idle"], idle)
        for name, count in total.items():
            abandoned.add_metric([name], now.get(name, 0))
            abandoned_total.add_metric([name], count)
        return [threads, abandoned, abandoned_total]


class SdkMetrics:
    """Every metric the SDK records, registered once on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._register_request_metrics(registry)
        self._register_guard_cache_sdk_metrics(registry)

    def _register_request_metrics(self, r: CollectorRegistry) -> None:
        genai = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of GenAI client operations (LLM and embedding calls).",
            [*genai, "error_type"],
            buckets=GENAI_DURATION_BUCKETS,
            registry=r,
        )
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per GenAI client operation, by token type (input, output).",
            [*genai, "gen_ai_token_type"],
            buckets=GENAI_TOKEN_BUCKETS,
            registry=r,
        )
        self.http_duration = DeadlineHistogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests; the request deadline is a bucket boundary.",
            ["http_request_method", "http_route", "http_response_status_code"],
            HTTP_DURATION_BUCKETS,
            r,
        )
        self.http_active = Gauge(
            "http_server_active_requests",
            "HTTP server requests in flight.",
            ["http_request_method"],
            registry=r,
        )

    def _register_guard_cache_sdk_metrics(self, r: CollectorRegistry) -> None:
        self.guard = GuardMetrics(r)
        self.guard_workers = WorkerMetrics(r)
        self.guard_retries = Counter(
            "watchkeeper_guard_retries", "Retries made by guards.", ["name"], registry=r
        )
        self.cache_requests = Counter(
            "watchkeeper_cache_requests",
            "Cache lookups by cache name and result (hit, miss).",
            ["name", "result"],
            registry=r,
        )
        self.spans_ended = Counter(
            "watchkeeper_sdk_spans_ended",
            "Sampled spans handed to the export queue.",
            registry=r,
        )
        self.spans_exported = Counter(
            "watchkeeper_sdk_spans_exported",
            "Spans sent to the server, by result (success, failure); ended minus these were "
            "dropped by the bounded export queue or are still in it.",
            ["result"],
            registry=r,
        )
        self.log_records_emitted = Counter(
            "watchkeeper_sdk_log_records_emitted",
            'Log records handed to the bounded export queue (init(logs="otlp")).',
            registry=r,
        )
        self.log_records_exported = Counter(
            "watchkeeper_sdk_log_records_exported",
            "Log records sent to the server, by result (success, failure).",
            ["result"],
            registry=r,
        )
        self.log_records_dropped = Counter(
            "watchkeeper_sdk_log_records_dropped",
            "Log records dropped because the export queue was full (the server slow or away).",
            registry=r,
        )
        self.sdk_errors = Counter(
            "watchkeeper_sdk_errors",
            "Failures inside the Watchkeeper SDK that were swallowed to protect the app.",
            ["kind"],
            registry=r,
        )


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, SdkMetrics] = weakref.WeakKeyDictionary()
_BY_REGISTRY_LOCK = threading.Lock()


def metrics_for(registry: CollectorRegistry) -> SdkMetrics:
    """The SDK's metrics on `registry`, registering them the first time (init may repeat)."""
    with _BY_REGISTRY_LOCK:
        metrics = _BY_REGISTRY.get(registry)
        if metrics is None:
            metrics = _BY_REGISTRY[registry] = SdkMetrics(registry)
        return metrics
