"""Metric retention in a running server: samples past `metrics.retention_days` are deleted
on the retention schedule, with the series left without one."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.eventually import eventually
from tests.metrics.conftest import Server
from tests.metrics.test_alerts import gauge

DAY_S = 86400


def test_samples_past_retention_go_with_their_series(make_server: Callable[..., Server]) -> None:
    server = make_server(
        auth={"required": False},
        metrics={"retention_days": 2},
        retention={"days": 30, "check_interval_s": 0.2},
    )
    now = time.time()
    gauge(server.url, "queue_depth", {"old": 1.0}, now - 3 * DAY_S)
    gauge(server.url, "queue_depth", {"kept": 2.0}, now - 1 * DAY_S)
    server.flush()

    def queues() -> list[str]:
        found = server.prom("series", **{"match[]": "queue_depth", "start": str(now - 4 * DAY_S)})
        return sorted(s["queue"] for s in found.json()["data"])

    assert eventually(queues, 15, until=lambda q: q == ["kept"]) == ["kept"]
    assert server.services.metrics_ingest.store.stats() == {"default": 1}
    assert server.metric("watchkeeper_metrics_series") == 1.0
