"""Asking the store what a rule needs (the I/O edge before the pure `evaluate`).

Filters are built by pure functions; `fetch` and `example_traces` are the only calls out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from watchkeeper.alerting._config import Filters, Rule, Slo
from watchkeeper.alerting._evaluate import RuleData, Window
from watchkeeper.store._protocol import SpanFilter, Store, Summary

NS = 1_000_000_000
DAY_S = 86400.0
#: Group dimension → the SpanFilter field that narrows a query to one group.
_GROUP_FIELD = {
    "service": "services",
    "environment": "environments",
    "operation": "operations",
    "provider": "providers",
    "model": "models",
    "route": "routes",
    "agent": "agents",
    "outcome": "outcomes",
    "feature": "features",
}


def span_filter(project: str, filters: Filters, start_s: float, end_s: float) -> SpanFilter:
    """The store filter of a rule's or SLO's filters over [start, end)."""
    return SpanFilter(
        project=project,
        start_ns=int(start_s * NS),
        end_ns=int(end_s * NS),
        scope=filters.scope,
        services=filters.services,
        environments=filters.environments,
        operations=filters.operations,
        providers=filters.providers,
        models=filters.models,
        outcomes=filters.outcomes,
        routes=filters.routes,
        agents=filters.agents,
        features=filters.features,
        name=filters.name,
    )


def narrow(f: SpanFilter, labels: Mapping[str, str]) -> SpanFilter:
    """The filter restricted to one group (labels naming a group dimension)."""
    changes: dict[str, Any] = {}
    for dim, value in labels.items():
        fld = _GROUP_FIELD.get(dim)
        if fld is not None and value:
            changes[fld] = (value,)
    return dataclasses.replace(f, **changes)


def _summaries(store: Store, rule: Rule, f: SpanFilter) -> dict[str | None, Summary]:
    if rule.group_by is None:
        return {None: store.summary(f)}
    groups = store.breakdown(f, rule.group_by, limit=rule.max_groups)
    return {g.key: g.summary for g in groups}


def _baseline(store: Store, rule: Rule, now: float) -> list[float]:
    values = []
    for day in range(1, rule.baseline_days + 1):
        end = now - day * DAY_S
        s = store.summary(span_filter(rule.project, rule.filters, end - rule.window, end))
        if s.count:  # a day without traffic (before the service existed) is not a zero
            values.append(_metric(s, rule.metric))
    return values


def _metric(s: Summary, metric: str) -> float:
    if metric == "total_tokens":
        return float(s.input_tokens + s.output_tokens)
    if metric == "p95":
        return float(s.p95_ms or 0.0)
    return float(getattr(s, metric))


def slo_window(store: Store, slo: Slo, start_s: float, end_s: float) -> Window:
    """All and bad requests of an SLO's SLI over [start, end)."""
    f = span_filter(slo.project, slo.filters, start_s, end_s)
    s = store.summary(f)
    if slo.sli == "availability":
        return Window(s.count, s.count - s.success - s.fallbacks)
    good = store.summary(dataclasses.replace(f, max_duration_ms=slo.latency_threshold_ms))
    return Window(s.count, s.count - good.count)


def fetch(store: Store, rule: Rule, now: float, slos: Mapping[str, Slo]) -> RuleData:
    """Query the store for everything `evaluate(rule, ...)` reads at `now`."""
    if rule.kind == "score":
        f = span_filter(rule.project, rule.filters, now - rule.window, now)
        return RuleData(scores=store.scores_summary(f, rule.score_name))
    if rule.kind == "burn_rate":
        slo = slos.get(rule.slo)
        if slo is None:
            return RuleData()
        long = slo_window(store, slo, now - rule.window, now)
        short = slo_window(store, slo, now - rule.short_window, now)
        return RuleData(burn=(long, short), objective=slo.objective)
    start = now - (rule.lookback if rule.kind == "absence" else rule.window)
    groups = _summaries(store, rule, span_filter(rule.project, rule.filters, start, now))
    if rule.kind == "anomaly":
        return RuleData(groups=groups, baseline=_baseline(store, rule, now))
    return RuleData(groups=groups)


def trace_filter(rule: Rule, labels: Mapping[str, str], now: float) -> SpanFilter:
    """Spans that show why an alert fires: its group, in its window, the bad ones."""
    f = narrow(span_filter(rule.project, rule.filters, now - rule.window, now), labels)
    if rule.kind == "outcome_ratio":
        f = dataclasses.replace(f, outcomes=rule.outcomes)
    elif rule.kind == "latency" and rule.comparison in (">", ">="):
        f = dataclasses.replace(f, min_duration_ms=rule.threshold)
    return f


def example_traces(
    store: Store, rule: Rule, labels: Mapping[str, str], now: float, limit: int
) -> tuple[str, ...]:
    """Up to `limit` distinct trace ids of spans behind an alert."""
    if limit <= 0 or rule.kind in ("score", "absence", "burn_rate"):
        return ()
    page = store.search_spans(trace_filter(rule, labels, now), limit=limit * 4)
    seen: dict[str, None] = {}
    for span in page.items:
        seen.setdefault(span.trace_id, None)
    return tuple(seen)[:limit]
