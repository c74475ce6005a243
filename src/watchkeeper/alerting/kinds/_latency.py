"""`latency`: a statistic of span durations (p50 … p99, avg, max)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from watchkeeper.alerting._evaluate import metric_value
from watchkeeper.alerting._fetch import QueryContext, window_filter
from watchkeeper.alerting._promql import (
    DURATION,
    QUANTILES,
    Expression,
    duration,
    filter_matchers,
    group_labels,
    min_count_clause,
    number,
    selector,
)
from watchkeeper.alerting.kinds._span import SpanRule
from watchkeeper.store import SpanFilter, Summary

Statistic = Literal["p50", "p90", "p95", "p99", "avg", "max"]


class LatencyRule(SpanRule):
    """Fires when a latency statistic of the window crosses the threshold (ms)."""

    label = "Latency"
    about = "A statistic of span durations in milliseconds: p50, p90, p95, p99, avg or max."
    example: ClassVar[dict[str, Any]] = {"statistic": "p95", "threshold": 8000, "window": "5m"}

    kind: Literal["latency"] = "latency"
    statistic: Statistic = "p95"

    @property
    def percentiles(self) -> bool:
        """p50 … p99 need them; avg and max do not."""
        return self.statistic.startswith("p")

    def value(self, s: Summary) -> float | None:
        """The statistic in ms."""
        return metric_value(s, self.statistic) if self.judged(s) else None

    def examples(
        self, labels: Mapping[str, str], now: float, ctx: QueryContext
    ) -> SpanFilter | None:
        """The group's spans slower than the threshold (all of them for `<` rules)."""
        f = window_filter(self, labels, now)
        if self.comparison in (">", ">="):
            f = dataclasses.replace(f, min_duration_ms=self.threshold)
        return f

    def unit(self) -> str:
        """Milliseconds."""
        return "ms"

    def watches(self) -> str:
        """`p95 latency`."""
        return f"{self.statistic} latency"

    def promql(self) -> Expression | str:
        """A quantile of the duration histogram (or its mean), in ms."""
        base = filter_matchers(self.project, self.filters, DURATION)
        by = group_labels(self, DURATION)
        if isinstance(base, str) or isinstance(by, str):
            return base if isinstance(base, str) else str(by)
        g, w = ", ".join(by), duration(self.window)
        if self.statistic in QUANTILES:
            buckets = selector(f"{DURATION}_bucket", base)
            q = QUANTILES[self.statistic]
            value = f"histogram_quantile({q}, sum by ({g}, le) (rate({buckets}[{w}])))"
        elif self.statistic == "avg":
            total = f"sum by ({g}) (rate({selector(f'{DURATION}_sum', base)}[{w}]))"
            value = f"{total}\n/\nsum by ({g}) (rate({selector(f'{DURATION}_count', base)}[{w}]))"
        else:
            return f"statistic {self.statistic} cannot be computed from a histogram"
        expr = f"(\n  {value}\n) * 1000 {self.comparison} {number(self.threshold)}"
        expr += min_count_clause(self, g, selector(f"{DURATION}_count", base))
        return Expression(expr, "ms", self.filters.scope == "requests")
