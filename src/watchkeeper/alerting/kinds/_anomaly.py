"""`anomaly`: the window's value against the median of the same window on past days."""

from __future__ import annotations

import statistics
from typing import Any, ClassVar, Literal

from pydantic import Field

from watchkeeper.alerting._evaluate import Observation, RuleData, metric_value
from watchkeeper.alerting._fetch import (
    BASELINE_REUSE_S,
    DAY_S,
    QueryContext,
    Reader,
    span_filter,
    summaries,
)
from watchkeeper.alerting._promql import (
    COST,
    DURATION,
    SPANS,
    TOKEN_FIELDS,
    TOKENS,
    Expression,
    duration,
    filter_matchers,
    matcher,
    number,
    selector,
)
from watchkeeper.alerting.kinds._span import SpanRule
from watchkeeper.store import Summary

AnomalyMetric = Literal["cost_usd", "count", "errors", "timeouts", "total_tokens", "p95"]
TOTAL_TOKENS = {"type": TOKEN_FIELDS["total_tokens"]}


class AnomalyRule(SpanRule):
    """Fires when the value is over `factor` × the baseline median and at least `min_value`."""

    label = "Anomaly"
    about = (
        "The window's cost, count, errors, timeouts, tokens or p95 against factor × the "
        "median of the same window on the past baseline_days (three days with traffic at least)."
    )
    groupable = False
    example: ClassVar[dict[str, Any]] = {
        "metric": "cost_usd",
        "window": "1h",
        "factor": 2,
        "min_value": 1,
    }

    kind: Literal["anomaly"] = "anomaly"
    metric: AnomalyMetric = "cost_usd"
    baseline_days: int = Field(default=7, ge=1, le=28)
    factor: float = Field(default=1.5, gt=0)  # value > factor × baseline median
    min_value: float = 0.0  # ignore values below this (noise at low traffic)

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """The window's summary, and the baseline (reused for BASELINE_REUSE_S)."""
        groups = summaries(
            store, self, span_filter(self.project, self.filters, now - self.window, now)
        )
        key = (self.id, int(now // BASELINE_REUSE_S))
        cache = ctx.baselines
        if key not in cache:
            for old in [k for k in cache if k[0] == self.id]:
                del cache[old]
            cache[key] = self._baseline(store, now)
        return RuleData(groups=groups, baseline=cache[key])

    def _baseline(self, store: Reader, now: float) -> list[float]:
        values = []
        for day in range(1, self.baseline_days + 1):
            end = now - day * DAY_S
            f = span_filter(self.project, self.filters, end - self.window, end)
            s = store.summary(f, percentiles=self.percentiles)
            if s.count:  # a day without traffic (before the service existed) is not a zero
                values.append(_metric(s, self.metric))
        return values

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """Over factor × the median of at least three past days, and at least min_value."""
        s = data.groups.get(None, Summary())
        value = self.value(s)
        points = [b for b in data.baseline if b is not None]
        if value is None or len(points) < 3:  # a median of fewer days says little
            return [Observation(None, {}, value, None, False, s.count)]
        threshold = self.factor * statistics.median(points)
        breaching = value > threshold and value >= self.min_value
        return [Observation(None, {}, value, threshold, breaching, s.count)]

    @property
    def percentiles(self) -> bool:
        """Only for p95."""
        return self.metric == "p95"

    def value(self, s: Summary) -> float | None:
        """The metric in the window."""
        return metric_value(s, self.metric)

    def unit(self) -> str:
        """USD for cost, ms for p95, none for counts and tokens."""
        return {"cost_usd": "USD", "p95": "ms"}.get(self.metric, "")

    def watches(self) -> str:
        """`cost_usd vs 7d baseline`."""
        return f"{self.metric} vs {self.baseline_days}d baseline"

    def condition(self) -> str | None:
        """`> 1.5× baseline`."""
        return f"> {self.factor:g}× baseline"

    def promql(self) -> Expression | str:
        """The same rule over `offset` windows: above factor × their median, three at least."""
        now = self._promql_value("")
        if isinstance(now, str):
            return now
        days = []
        for day in range(1, self.baseline_days + 1):
            past = self._promql_value(f"{day}d")
            assert not isinstance(past, str)  # same matchers as `now`
            term = f"({past[0]}) and on (project) ({past[1]})"
            days.append(f'label_replace({term}, "baseline_day", "{day}", "", "")')
        past_days = "\n  or ".join(days)
        # The engine's rule: above factor × the median of the same window on past days that had
        # traffic, at least min_value, and only once three such days exist.
        expr = (
            f"({now[0]})\n> {number(self.factor)} * quantile by (project) (0.5,\n  {past_days}\n)\n"
            f"and on (project) ({now[0]}) >= {number(self.min_value)}\n"
            f"and on (project) count by (project) (\n  {past_days}\n) >= 3"
        )
        return Expression(expr, now[2], self.filters.scope == "requests")

    def _promql_value(self, offset: str) -> tuple[str, str, str] | str:
        """(value, days-with-data condition, unit) of the metric over the window `offset` ago."""
        w = duration(self.window) + "]" + (f" offset {offset}" if offset else "")
        spans = filter_matchers(self.project, self.filters, SPANS)
        if isinstance(spans, str):
            return spans
        total = f"sum by (project) (increase({selector(SPANS, spans)}[{w}))"
        if self.metric in ("cost_usd", "total_tokens"):
            metric, extra = (COST, {}) if self.metric == "cost_usd" else (TOKENS, TOTAL_TOKENS)
            base = filter_matchers(self.project, self.filters, metric, extra)
            if isinstance(base, str):
                return base
            value = f"sum by (project) (increase({selector(metric, base)}[{w}))"
            return value, f"{value} > 0", "USD" if metric == COST else "tokens"
        if self.metric == "count":
            return total, f"{total} > 0", "spans"
        if self.metric in ("errors", "timeouts"):
            bad = [*spans, matcher("outcome", [self.metric.rstrip("s")])]
            value = f"(sum by (project) (increase({selector(SPANS, bad)}[{w})) or 0 * {total})"
            return value, f"{total} > 0", "spans"
        buckets = selector(f"{DURATION}_bucket", spans)  # p95
        value = f"histogram_quantile(0.95, sum by (project, le) (rate({buckets}[{w}))) * 1000"
        return value, f"{total} > 0", "ms"


def _metric(s: Summary, metric: str) -> float:
    if metric == "total_tokens":
        return float(s.input_tokens + s.output_tokens)
    if metric == "p95":
        return float(s.p95_ms or 0.0)
    return float(getattr(s, metric))
