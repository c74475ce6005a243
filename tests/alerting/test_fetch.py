"""Queries of one cycle: shared breakdowns give the same numbers as each rule's own query."""

from __future__ import annotations

import dataclasses

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
