"""Asking the store what a rule needs (the I/O edge before the pure `evaluate`).

Filters are built by pure functions; `fetch` and `example_traces` are the only calls out.
Within one cycle every rule sees the same `now`, so identical queries are asked once
(`CycleQueries`), and a rule narrowed to one service or model reads its row from the shared
breakdown by that dimension: 200 rules cost a few dozen queries, not 200 (bench/alerts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from watchkeeper.alerting._config import Filters, Rule, Slo
from watchkeeper.alerting._evaluate import RuleData, Window
from watchkeeper.store import (
    Dimension,
    Group,
    Page,
    ScoreSummary,
    SpanFilter,
    Store,
    Summary,
)

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


SHARED_LIMIT = 200  # groups of a shared breakdown (service and model are low-cardinality)
#: Single-valued filters a rule may read from a shared breakdown instead of its own query.
# (Only service: a model filter matches request or response model, its breakdown only one.)
_SHARED = (("services", "service"),)


class SummaryReader(Protocol):
    """Summaries and breakdowns: what SLO windows and digests read."""

    def summary(self, f: SpanFilter, last_n: int | None = None) -> Summary:
        """See `Store.summary`."""
        ...

    def breakdown(
        self, f: SpanFilter, by: Dimension, limit: int = 20, order: str = "count"
    ) -> list[Group]:
        """See `Store.breakdown`."""
        ...


class Reader(SummaryReader, Protocol):
    """The part of the `Store` a rule's queries use."""

    def scores_summary(self, f: SpanFilter, name: str | None = None) -> list[ScoreSummary]:
        """See `Store.scores_summary`."""
        ...

    def search_spans(self, f: SpanFilter, limit: int = 50, cursor: str | None = None) -> Page:
        """See `Store.search_spans`."""
        ...


class CycleQueries:
    """A `Reader` that asks the store each distinct query once (for one cycle's `now`)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.asked = 0  # queries that reached the store

    def _once(self, key: tuple[Any, ...], ask: Any) -> Any:
        if key not in self._memo:
            self.asked += 1
            self._memo[key] = ask()
        return self._memo[key]

    def summary(self, f: SpanFilter, last_n: int | None = None) -> Summary:
        """The store's summary, asked once per filter."""
        shared = _shared_row(self, f) if last_n is None else None
        if shared is not None:
            return shared
        result: Summary = self._once(("s", f, last_n), lambda: self._store.summary(f, last_n))
        return result

    def breakdown(
        self, f: SpanFilter, by: Dimension, limit: int = 20, order: str = "count"
    ) -> list[Group]:
        """The store's breakdown, asked once per (filter, dimension, limit, order)."""
        key = ("b", f, by, limit, order)
        result: list[Group] = self._once(key, lambda: self._store.breakdown(f, by, limit, order))
        return result

    def scores_summary(self, f: SpanFilter, name: str | None = None) -> list[ScoreSummary]:
        """The store's score aggregates, asked once per filter."""
        key = ("sc", f, name)
        result: list[ScoreSummary] = self._once(key, lambda: self._store.scores_summary(f, name))
        return result

    def search_spans(self, f: SpanFilter, limit: int = 50, cursor: str | None = None) -> Page:
        """Spans, straight from the store (example traces are not shared)."""
        return self._store.search_spans(f, limit, cursor)


def _shared_row(q: CycleQueries, f: SpanFilter) -> Summary | None:
    # A filter on exactly one service (or model) is one row of the breakdown by service of
    # the same filter without it; that breakdown is shared by every such rule of the cycle.
    for fld, dim in _SHARED:
        values: Sequence[str] = getattr(f, fld)
        if len(values) != 1:
            continue
        groups = q.breakdown(dataclasses.replace(f, **{fld: ()}), dim, SHARED_LIMIT)  # type: ignore[arg-type]
        row = next((g.summary for g in groups if g.key == values[0]), None)
        if row is not None:
            return row
        return Summary() if len(groups) < SHARED_LIMIT else None
    return None


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


def _summaries(store: Reader, rule: Rule, f: SpanFilter) -> dict[str | None, Summary]:
    if rule.group_by is None:
        return {None: store.summary(f)}
    groups = store.breakdown(f, rule.group_by, limit=rule.max_groups)
    return {g.key: g.summary for g in groups}


def _baseline(store: Reader, rule: Rule, now: float) -> list[float]:
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


def slo_window(store: SummaryReader, slo: Slo, start_s: float, end_s: float) -> Window:
    """All and bad requests of an SLO's SLI over [start, end)."""
    f = span_filter(slo.project, slo.filters, start_s, end_s)
    s = store.summary(f)
    if slo.sli == "availability":
        return Window(s.count, s.count - s.success - s.fallbacks)
    good = store.summary(dataclasses.replace(f, max_duration_ms=slo.latency_threshold_ms))
    return Window(s.count, s.count - good.count)


BaselineCache = dict[tuple[str, int], list[float]]
BASELINE_REUSE_S = 300  # the same-hour median of past days moves slowly: reuse it 5 minutes


def slo_of(rule: Rule, slos: Mapping[str, Slo]) -> Slo | None:
    """The SLO a burn-rate rule burns: one of the rule's own project, never another's (SLO
    ids are unique in the configuration, not per project)."""
    slo = slos.get(rule.slo) if rule.kind == "burn_rate" else None
    return slo if slo is not None and slo.project == rule.project else None


def fetch(
    store: Reader,
    rule: Rule,
    now: float,
    slos: Mapping[str, Slo],
    baselines: BaselineCache | None = None,
) -> RuleData:
    """Query the store for everything `evaluate(rule, ...)` reads at `now`."""
    if rule.kind == "score":
        f = span_filter(rule.project, rule.filters, now - rule.window, now)
        return RuleData(scores=store.scores_summary(f, rule.score_name))
    if rule.kind == "burn_rate":
        slo = slo_of(rule, slos)
        if slo is None:
            return RuleData()
        long = slo_window(store, slo, now - rule.window, now)
        short = slo_window(store, slo, now - rule.short_window, now)
        return RuleData(burn=(long, short), objective=slo.objective)
    start = now - (rule.lookback if rule.kind == "absence" else rule.window)
    groups = _summaries(store, rule, span_filter(rule.project, rule.filters, start, now))
    if rule.kind == "anomaly":
        key = (rule.id, int(now // BASELINE_REUSE_S))
        cache = {} if baselines is None else baselines
        if key not in cache:
            for old in [k for k in cache if k[0] == rule.id]:
                del cache[old]
            cache[key] = _baseline(store, rule, now)
        return RuleData(groups=groups, baseline=cache[key])
    return RuleData(groups=groups)


def trace_filter(rule: Rule, labels: Mapping[str, str], now: float) -> SpanFilter:
    """Spans that show why an alert fires: its group, in its window, the bad ones."""
    f = narrow(span_filter(rule.project, rule.filters, now - rule.window, now), labels)
    if rule.kind == "outcome_ratio":
        f = dataclasses.replace(f, outcomes=rule.outcomes)
    elif rule.kind == "latency" and rule.comparison in (">", ">="):
        f = dataclasses.replace(f, min_duration_ms=rule.threshold)
    return f


BAD_OUTCOMES = ("error", "timeout", "rejected")


def slo_trace_filter(slo: Slo, start_s: float, end_s: float) -> SpanFilter:
    """Requests that spent an SLO's error budget in [start, end)."""
    f = span_filter(slo.project, slo.filters, start_s, end_s)
    if slo.sli == "availability":
        return dataclasses.replace(f, outcomes=BAD_OUTCOMES)
    return dataclasses.replace(f, min_duration_ms=slo.latency_threshold_ms)


def example_traces(
    store: Reader,
    rule: Rule,
    labels: Mapping[str, str],
    now: float,
    limit: int,
    slo: Slo | None = None,
) -> tuple[str, ...]:
    """Up to `limit` distinct trace ids of spans behind an alert."""
    if limit <= 0 or rule.kind in ("score", "absence") or (rule.kind == "burn_rate" and not slo):
        return ()
    if slo is not None and rule.kind == "burn_rate":
        f = slo_trace_filter(slo, now - rule.short_window, now)
    else:
        f = trace_filter(rule, labels, now)
    page = store.search_spans(f, limit=limit * 4)
    seen: dict[str, None] = {}
    for span in page.items:
        seen.setdefault(span.trace_id, None)
    return tuple(seen)[:limit]
