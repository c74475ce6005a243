"""Asking the store what a rule needs (the I/O edge before the pure `evaluate`).

Filters are built by pure functions; `fetch` and `example_traces` are the only calls out.
Within one cycle every rule sees the same `now`, so identical queries are asked once
(`CycleQueries`), and a rule narrowed to one service or model reads its row from the shared
breakdown by that dimension: 200 rules cost a few dozen queries, not 200 (bench/alerts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from watchkeeper.alerting._evaluate import RuleData, Window
from watchkeeper.alerting._model import Filters, Rule, Slo
from watchkeeper.store import (
    Dimension,
    Group,
    Page,
    ScoreSummary,
    SpanFilter,
    Store,
    Summary,
)

if TYPE_CHECKING:
    from watchkeeper.store.logs import LogFilter

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
_SHARED_DIMS: tuple[tuple[str, Dimension], ...] = (("services", "service"),)


class SummaryReader(Protocol):
    """Summaries and breakdowns: what SLO windows and digests read."""

    def summary(
        self, f: SpanFilter, last_n: int | None = None, *, percentiles: bool = True
    ) -> Summary:
        """See `Store.summary`."""
        ...

    def breakdown(
        self,
        f: SpanFilter,
        by: Dimension,
        limit: int = 20,
        order: str = "count",
        *,
        percentiles: bool = True,
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
    """A `Reader` that asks the store each distinct query once (for one cycle's `now`); a
    query without percentiles takes the answer of the same query with them, if asked."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.asked = 0  # queries that reached the store

    def _once(self, key: tuple[Any, ...], ask: Callable[[], Any], percentiles: bool) -> Any:
        fuller = (*key, True)
        if not percentiles and fuller in self._memo:
            return self._memo[fuller]
        key = (*key, percentiles)
        if key not in self._memo:
            self.asked += 1
            self._memo[key] = ask()
        return self._memo[key]

    def summary(
        self, f: SpanFilter, last_n: int | None = None, *, percentiles: bool = True
    ) -> Summary:
        """The store's summary, asked once per filter."""
        shared = _shared_row(self, f, percentiles) if last_n is None else None
        if shared is not None:
            return shared
        ask = partial(self._store.summary, f, last_n, percentiles=percentiles)
        result: Summary = self._once(("s", f, last_n), ask, percentiles)
        return result

    def breakdown(
        self,
        f: SpanFilter,
        by: Dimension,
        limit: int = 20,
        order: str = "count",
        *,
        percentiles: bool = True,
    ) -> list[Group]:
        """The store's breakdown, asked once per (filter, dimension, limit, order)."""
        key = ("b", f, by, limit, order)
        ask = partial(self._store.breakdown, f, by, limit, order, percentiles=percentiles)
        result: list[Group] = self._once(key, ask, percentiles)
        return result

    def scores_summary(self, f: SpanFilter, name: str | None = None) -> list[ScoreSummary]:
        """The store's score aggregates, asked once per filter."""
        key = ("sc", f, name)
        ask = partial(self._store.scores_summary, f, name)
        result: list[ScoreSummary] = self._once(key, ask, True)
        return result

    def search_spans(self, f: SpanFilter, limit: int = 50, cursor: str | None = None) -> Page:
        """Spans, straight from the store (example traces are not shared)."""
        return self._store.search_spans(f, limit, cursor)


def _shared_row(q: CycleQueries, f: SpanFilter, percentiles: bool) -> Summary | None:
    # A filter on exactly one service (or model) is one row of the breakdown by service of
    # the same filter without it; that breakdown is shared by every such rule of the cycle.
    for fld, dim in _SHARED_DIMS:
        values: Sequence[str] = getattr(f, fld)
        if len(values) != 1:
            continue
        whole = dataclasses.replace(f, **{fld: ()})  # type: ignore[arg-type]
        groups = q.breakdown(whole, dim, SHARED_LIMIT, percentiles=percentiles)
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


def summaries(store: Reader, rule: Rule, f: SpanFilter) -> dict[str | None, Summary]:
    """The rule's summary over `f`, per group of its `group_by` (one, keyed None, without)."""
    if rule.group_by is None:
        return {None: store.summary(f, percentiles=rule.percentiles)}
    groups = store.breakdown(f, rule.group_by, limit=rule.max_groups, percentiles=rule.percentiles)
    return {g.key: g.summary for g in groups}


def slo_window(store: SummaryReader, slo: Slo, start_s: float, end_s: float) -> Window:
    """All and bad requests of an SLO's SLI over [start, end)."""
    f = span_filter(slo.project, slo.filters, start_s, end_s)
    s = store.summary(f, percentiles=False)
    if slo.sli == "availability":
        return Window(s.count, s.count - s.success - s.fallbacks)
    fast = dataclasses.replace(f, max_duration_ms=slo.latency_threshold_ms)
    good = store.summary(fast, percentiles=False)
    return Window(s.count, s.count - good.count)


BaselineCache = dict[tuple[str, int], list[float]]
BASELINE_REUSE_S = 300  # the same-hour median of past days moves slowly: reuse it 5 minutes


#: One series of an instant PromQL result: its labels (without `__name__`) and its value.
MetricSample = tuple[Mapping[str, str], float]


class MetricReader(Protocol):
    """The metric store as PromQL rules read it."""

    def instant(self, project: str, expr: str, at_s: float) -> list[MetricSample]:
        """The series of `expr` at `at_s` (a scalar is one series without labels)."""
        ...

    def has_metric(self, project: str, name: str) -> bool:
        """Whether the project holds a series of the metric."""
        ...


class LogReader(Protocol):
    """The log store as log rules read it."""

    def count_matching(self, f: LogFilter) -> int:
        """The number of records `f` matches."""
        ...


@dataclass(frozen=True, slots=True)
class Signals:
    """The stores rules read besides the span store (None: the server has none)."""

    metrics: MetricReader | None = None
    logs: LogReader | None = None


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What a rule's query may read besides the store: the SLOs, the baseline cache, the
    metric and log stores (None: the server has none)."""

    slos: Mapping[str, Slo] = field(default_factory=dict)
    baselines: BaselineCache = field(default_factory=dict)
    metrics: MetricReader | None = None
    logs: LogReader | None = None


def fetch(
    store: Reader,
    rule: Rule,
    now: float,
    slos: Mapping[str, Slo],
    baselines: BaselineCache | None = None,
    signals: Signals = Signals(),
) -> RuleData:
    """Query the store for everything `evaluate(rule, ...)` reads at `now`."""
    ctx = QueryContext(slos, {} if baselines is None else baselines, signals.metrics, signals.logs)
    return rule.query(store, now, ctx)


def window_filter(rule: Rule, labels: Mapping[str, str], now: float) -> SpanFilter:
    """The rule's filters over its window, narrowed to one group."""
    return narrow(span_filter(rule.project, rule.filters, now - rule.window, now), labels)


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
    slos: Mapping[str, Slo],
) -> tuple[str, ...]:
    """Up to `limit` distinct trace ids of spans behind an alert."""
    f = rule.examples(labels, now, QueryContext(slos)) if limit > 0 else None
    if f is None:
        return ()
    page = store.search_spans(f, limit=limit * 4)
    seen: dict[str, None] = {}
    for span in page.items:
        seen.setdefault(span.trace_id, None)
    return tuple(seen)[:limit]
