"""Metric retention in a running server: samples past `metrics.retention_days` (before the
newest sample, as Prometheus counts) are deleted on the retention schedule, with the series
left without one."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.eventually import eventually
from tests.metrics.conftest import Server
from tests.metrics.test_alerts import gauge
from watchkeeper.model import Sample
from watchkeeper.server._retention import drop_samples
from watchkeeper.store.metrics import MetricsStore

DAY_S = 86400


def test_samples_past_retention_go_with_their_series(make_server: Callable[..., Server]) -> None:
    server = make_server(
        auth={"required": False},
        metrics={"retention_days": 2},
        retention={"days": 30, "check_interval_s": 0.2},
    )
    now = time.time()
    gauge(server.url, "queue_depth", {"old": 1.0}, now - 4 * DAY_S)
    gauge(server.url, "queue_depth", {"kept": 2.0}, now - 1 * DAY_S)
    server.flush()

    def queues() -> list[str]:
        found = server.prom("series", **{"match[]": "queue_depth", "start": str(now - 5 * DAY_S)})
        return sorted(s["queue"] for s in found.json()["data"])

    assert eventually(queues, 15, until=lambda q: q == ["kept"]) == ["kept"]
    assert server.services.metrics_ingest.store.stats() == {"default": 1}
    assert server.metric("watchkeeper_metrics_series") == 1.0


def _one_pass(store: MetricsStore, days: int, now_s: float) -> None:
    """One pass of metric retention at `now_s`."""
    drop_samples(store, days, now_s)


def test_retention_counts_from_the_newest_sample_but_never_past_the_clock() -> None:
    store = MetricsStore()
    t0 = 1_700_000_000_000  # 2023: written now for a past period
    labels = (("__name__", "up"), ("job", "a"))
    store.write("p", [Sample(labels, t0 - 5 * DAY_S * 1000, 1.0), Sample(labels, t0, 1.0)])
    _one_pass(store, 2, time.time())
    assert [len(s.t_ms) for s in store.select("p", [], 0, 2 * t0)] == [1]  # the old one went
    # A sample from the future does not make retention delete the present.
    future = (("__name__", "up"), ("job", "future"))
    store.write("p", [Sample(future, t0 + 400 * DAY_S * 1000, 1.0)])
    _one_pass(store, 2, t0 / 1000 + DAY_S)
    assert store.stats() == {"p": 2}
    store.close()


def test_a_series_deleted_and_written_again_is_read_under_its_new_number() -> None:
    store = MetricsStore()
    a, b, c = ((("__name__", "up"), ("job", j)) for j in "abc")
    store.write("p", [Sample(a, 1000, 1.0), Sample(b, 1000, 1.0)])
    store.write("p", [Sample(a, 2000, 2.0), Sample(b, 5000, 5.0)])  # a's number is cached
    assert store.delete_before(3000) == (3, 1)  # a's samples and a
    store.write("p", [Sample(c, 6000, 6.0)])
    store.write("p", [Sample(a, 7000, 7.0), Sample(c, 7000, 7.5)])
    store.write("p", [Sample(a, 8000, 8.0)])
    got = {s.labels["job"]: s.values.tolist() for s in store.select("p", [], 0, 10**6)}
    assert got == {"a": [7.0, 8.0], "b": [5.0], "c": [6.0, 7.5]}
    store.close()
