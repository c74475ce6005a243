"""`init(metrics="otlp")`: the app's Prometheus registry pushed over OTLP/HTTP as well.

Every `interval_s` (and once more at shutdown) the registry is collected and sent with the
OpenTelemetry SDK's own `OTLPMetricExporter` (its retries, its gzip) to
`<endpoint>/v1/metrics`: counters as cumulative monotonic sums (their `_created` as the start
time), gauges as gauges, histograms as explicit-bucket histograms, summaries' quantiles,
`_sum` and `_count` as gauges. The names are the registry's own series names with no unit,
so Watchkeeper (or any OTLP→Prometheus translation) gives back the same Prometheus series the
app serves on /metrics. The push never raises into the app: a failure is counted and logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry

from watchkeeper.sdk._safe import report_failure

log = logging.getLogger("watchkeeper.sdk.metrics")
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def _attrs(labels: dict[str, str], drop: str = "") -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != drop}


def _counter(family: Any, now_ns: int) -> Metric | None:
    created = {
        tuple(sorted(s.labels.items())): int(s.value * 1e9)
        for s in family.samples
        if s.name.endswith("_created")
    }
    points = [
        NumberDataPoint(
            s.labels, created.get(tuple(sorted(s.labels.items())), 0), now_ns, float(s.value)
        )
        for s in family.samples
        if s.name.endswith("_total")
    ]
    if not points:
        return None
    return Metric(family.name + "_total", family.documentation, "", Sum(points, _CUMULATIVE, True))


def _histogram(family: Any, now_ns: int) -> Metric | None:
    groups: dict[tuple[tuple[str, str], ...], dict[str, Any]] = defaultdict(
        lambda: {"buckets": [], "count": 0.0, "sum": 0.0}
    )
    for s in family.samples:
        key = tuple(sorted(_attrs(s.labels, "le").items()))
        if s.name.endswith("_bucket"):
            groups[key]["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            groups[key]["count"] = s.value
        elif s.name.endswith("_sum"):
            groups[key]["sum"] = s.value
    points = []
    for key, g in groups.items():
        buckets = sorted(g["buckets"])
        counts, previous = [], 0.0
        for _bound, cumulative in buckets:
            counts.append(int(cumulative - previous))
            previous = cumulative
        bounds = [b for b, _c in buckets if b != float("inf")]
        nan = float("nan")  # min and max: a Prometheus histogram does not know them
        count = int(g["count"])
        points.append(
            HistogramDataPoint(dict(key), 0, now_ns, count, g["sum"], counts, bounds, nan, nan)
        )
    if not points:
        return None
    return Metric(family.name, family.documentation, "", Histogram(points, _CUMULATIVE))


def _gauges(family: Any, now_ns: int) -> list[Metric]:
    by_name: dict[str, list[NumberDataPoint]] = defaultdict(list)
    for s in family.samples:
        if s.name.endswith("_created"):
            continue
        by_name[s.name].append(NumberDataPoint(s.labels, 0, now_ns, float(s.value)))
    return [
        Metric(name, family.documentation, "", Gauge(points)) for name, points in by_name.items()
    ]


def to_metrics_data(families: Iterable[Any], resource: Resource, now_ns: int) -> MetricsData:
    """Collected families as the OpenTelemetry SDK's `MetricsData` (pure)."""
    metrics: list[Metric] = []
    for family in families:
        if family.type == "counter":
            one = _counter(family, now_ns)
            metrics += [one] if one else []
        elif family.type == "histogram":
            one = _histogram(family, now_ns)
            metrics += [one] if one else []
        else:
            metrics += _gauges(family, now_ns)
    scope = ScopeMetrics(InstrumentationScope("watchkeeper"), metrics, "")
    return MetricsData([ResourceMetrics(resource, [scope], "")])


class MetricsPusher:
    """A daemon thread that exports the registry every `interval_s`, and once at `stop`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        exporter: MetricExporter,
        resource: Resource,
        interval_s: float,
    ) -> None:
        self._registry = registry
        self._exporter = exporter
        self._resource = resource
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wk-metrics-push", daemon=True)
        self.pushed = 0  # exports that succeeded (tests, health)

    def start(self) -> None:
        """Start pushing."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.push()

    def push(self) -> bool:
        """Collect and export once; False (counted, logged) when it failed."""
        try:
            data = to_metrics_data(self._registry.collect(), self._resource, time.time_ns())
            result = self._exporter.export(data, timeout_millis=10_000)
            ok = result.name == "SUCCESS"
        except Exception as exc:
            report_failure("metrics_push", exc)
            return False
        if ok:
            self.pushed += 1
        else:
            log.warning("pushing the app's metrics over OTLP failed (%s)", result.name)
        return ok

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and push what was recorded since the last push."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.push()
        self._exporter.shutdown()
