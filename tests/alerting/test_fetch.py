"""Queries of one cycle: shared breakdowns give the same numbers as each rule's own query."""

from __future__ import annotations

import dataclasses

import pytest

from tests.alerting._spans import requests
from watchkeeper.alerting._config import Filters
from watchkeeper.alerting._fetch import CycleQueries, span_filter
from watchkeeper.store.duckdb import DuckDBStore

T0 = 1_800_000_000.0


def test_single_service_reads_the_shared_breakdown() -> None:
    store = DuckDBStore(None)
    try:
        store.write(requests(T0, 40, timeouts=10, service="chat", duration_ms=300))
        store.write(requests(T0, 30, errors=3, service="search", duration_ms=900))
        base = span_filter("default", Filters(scope="requests"), T0 - 300, T0)
        q = CycleQueries(store)
        for service in ("chat", "search"):
            f = dataclasses.replace(base, services=(service,))
            assert q.summary(f) == store.summary(f)
        missing = dataclasses.replace(base, services=("nobody",))
        assert q.summary(missing).count == 0 == store.summary(missing).count
        assert q.asked == 1  # one breakdown by service answered all three
        q.summary(base)
        q.summary(base)
        assert q.asked == 2
    finally:
        store.close()


@pytest.mark.slow
def test_anomaly_against_the_same_hour_of_past_days() -> None:
    from watchkeeper.alerting import evaluate, parse_rule
    from watchkeeper.alerting._fetch import fetch

    rule = parse_rule({"id": "spend", "kind": "anomaly", "metric": "cost_usd", "window": "1h",
                       "factor": 1.5, "min_value": 1.0})  # fmt: skip
    store = DuckDBStore(None)
    try:
        for day, spend in zip(range(1, 8), (2.0, 2.2, 1.8, 2.0, 9.0, 2.1, 1.9), strict=True):
            store.write(requests(T0 - day * 86400 - 600, 10, cost_usd=spend / 10))
        store.write(requests(T0 - 86400 - 7200, 10, cost_usd=5.0))  # another hour: not counted
        store.write(requests(T0 - 600, 10, cost_usd=0.35))  # $3.50 in the last hour
        cache: dict[tuple[str, int], list[float]] = {}
        data = fetch(store, rule, T0, {}, cache)
        assert sorted(round(b, 2) for b in data.baseline) == [1.8, 1.9, 2.0, 2.0, 2.1, 2.2, 9.0]
        [obs] = evaluate(rule, data, T0).observations
        assert obs.value == pytest.approx(3.5) and obs.threshold == pytest.approx(3.0)
        assert obs.breaching
        assert fetch(store, rule, T0 + 60, {}, cache).baseline is data.baseline  # reused
    finally:
        store.close()


def test_absence_finds_the_silent_service() -> None:
    from watchkeeper.alerting import evaluate, parse_rule
    from watchkeeper.alerting._fetch import fetch

    rule = parse_rule({"id": "down", "kind": "absence", "group_by": "service", "window": "10m"})
    store = DuckDBStore(None)
    try:
        store.write(requests(T0 - 30, 5, service="alive"))
        store.write(requests(T0 - 3600, 5, service="gone"))
        store.write(requests(T0 - 3 * 86400, 5, service="long-gone"))  # past the 24h lookback
        obs = evaluate(rule, fetch(store, rule, T0, {}), T0).observations
        assert [(o.key, o.breaching) for o in obs] == [("alive", False), ("gone", True)]
    finally:
        store.close()


def test_a_query_without_percentiles_takes_the_answer_with_them() -> None:
    store = DuckDBStore(None)
    try:
        store.write(requests(T0, 40, timeouts=10, service="chat", duration_ms=300))
        f = span_filter("default", Filters(scope="requests"), T0 - 300, T0)
        q = CycleQueries(store)
        lean = q.summary(f, percentiles=False)
        assert lean.p95_ms is None and lean.count == 40
        full = q.summary(f)
        assert full.p95_ms is not None and q.asked == 2
        assert q.summary(f, percentiles=False) is full and q.asked == 2
        assert q.breakdown(f, "service", percentiles=False)[0].summary.p95_ms is None
        assert q.breakdown(f, "service")[0].summary.p95_ms is not None
        assert q.asked == 4
    finally:
        store.close()


@pytest.mark.parametrize(
    ("rule", "percentiles"),
    [
        ({"kind": "outcome_ratio", "outcomes": ["timeout"], "group_by": "service"}, False),
        ({"kind": "count", "threshold": 10}, False),
        ({"kind": "absence", "group_by": "service", "window": "10m"}, False),
        ({"kind": "latency", "statistic": "avg", "threshold": 100}, False),
        ({"kind": "latency", "statistic": "p95", "threshold": 100, "group_by": "service"}, True),
        ({"kind": "anomaly", "metric": "p95", "window": "1h"}, True),
    ],
)
def test_a_rule_asks_for_percentiles_only_when_its_value_needs_them(
    rule: dict[str, object], percentiles: bool
) -> None:
    from watchkeeper.alerting import evaluate, parse_rule
    from watchkeeper.alerting._fetch import fetch

    parsed = parse_rule({"id": "r", "filters": {"scope": "requests"}, **rule})
    assert parsed.percentiles is percentiles
    store = DuckDBStore(None)
    try:
        store.write(requests(T0 - 30, 40, timeouts=10, service="chat", duration_ms=300))
        data = fetch(store, parsed, T0, {}, {})
        assert data.groups and all(
            (s.p95_ms is not None) is percentiles for s in data.groups.values() if s.count
        )
        evaluate(parsed, data, T0)  # what it asked is enough to judge
    finally:
        store.close()
