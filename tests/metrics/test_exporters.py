"""Debian's node, PostgreSQL and Redis exporters scraped by Watchkeeper's scraper, and every
panel of the shipped Infrastructure dashboard run against what they expose: each query is
valid PromQL for our engine, and the numbers are the exporters' own."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from tests.eventually import eventually
from tests.metrics.conftest import Server
from watchkeeper.dashboards import SHIPPED_DIR, read_dashboard

pytestmark = pytest.mark.slow  # real exporters, a PostgreSQL and a Redis, scraped every second
INFRA = read_dashboard(SHIPPED_DIR / "infrastructure.yaml")
JOBS = ("node", "postgres", "redis")


def _vars(expr: str) -> str:
    return expr.replace("$job", ".*").replace("$instance", ".*")


@pytest.fixture
def infra(make_server: Callable[..., Server], exporters: Any) -> Server:
    jobs = [
        {"job_name": name, "targets": [exporters.targets[name]], "interval_s": 1, "timeout_s": 1}
        for name in JOBS
    ]
    srv = make_server(auth={"required": False}, metrics={"scrape": jobs})

    def all_up() -> dict[str, float]:
        body = srv.prom("query", query="up").json()
        return {r["metric"]["job"]: float(r["value"][1]) for r in body["data"]["result"]}

    ups = eventually(all_up, 30, 0.25, until=lambda u: len(u) == 3 and min(u.values()) == 1)
    assert ups == dict.fromkeys(JOBS, 1.0)
    return srv


def _instant(srv: Server, expr: str) -> list[dict[str, Any]]:
    body = srv.prom("query", query=_vars(expr)).json()
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_every_infrastructure_panel_runs_on_the_real_exporters(infra: Server) -> None:
    # two scrapes at least, so that rate() has two samples in its window
    eventually(lambda: _instant(infra, "rate(redis_commands_processed_total[5m])"), 20, 0.25)
    empty = []
    for section in INFRA.sections:
        for panel in section.panels:
            for q in panel.queries:
                assert q.promql is not None
                body = infra.prom(
                    "query_range", query=_vars(q.promql), start=0, end=120, step=15
                ).json()
                assert body["status"] == "success", (panel.title, body)
                if not _instant(infra, q.promql):
                    empty.append(panel.title)
    # Only what this world cannot have: no replica streams from the test server (the panel
    # says so), and Redis's maxmemory query has a value (the fixture sets one).
    assert set(empty) <= {"Replication lag", "Cache hit ratio", "Hit ratio"}, empty


def test_panels_show_the_exporters_numbers(infra: Server, exporters: Any) -> None:
    assert exporters.redis("SET", "wk:test", "1") == "OK"
    for _ in range(3):
        assert exporters.redis("GET", "wk:test") == "1"
    assert exporters.redis("GET", "wk:absent") == ""
    stats = dict(
        line.split(":", 1) for line in exporters.redis("INFO", "stats").splitlines() if ":" in line
    )
    by_title = {p.title: p for s in INFRA.sections for p in s.panels}
    # Redis: maxmemory is the fixture's, and the hit ratio counts our reads (3 hits, 1 miss)
    limit = _instant(infra, by_title["Memory vs maxmemory"].queries[1].promql or "")
    assert [float(r["value"][1]) for r in limit] == [64 * 1024 * 1024]

    def scraped(counter: str) -> float:
        return max((float(r["value"][1]) for r in _instant(infra, counter)), default=-1.0)

    # a scrape after our reads (the ratio before it may be 0/0, or 0 when misses of other
    # tests' reads are in the window and our hits are not yet)
    for counter, key in (("hits", "keyspace_hits"), ("misses", "keyspace_misses")):
        seen = eventually(
            lambda c=counter: scraped(f"redis_keyspace_{c}_total"),
            20, 0.25, until=lambda v, k=key: v >= float(stats[k]),
        )  # fmt: skip
        assert seen >= float(stats[key]), (counter, seen, stats[key])
    ratio = [
        float(r["value"][1]) for r in _instant(infra, by_title["Hit ratio"].queries[0].promql or "")
    ]
    assert len(ratio) == 1 and 0 < ratio[0] <= 1, ratio
    # PostgreSQL: max_connections is the test server's (tests._postgres sets 200)
    conns = _instant(infra, by_title["Connections"].queries[1].promql or "")
    assert [float(r["value"][1]) for r in conns] == [200]
    sizes = _instant(infra, by_title["Database size"].queries[0].promql or "")
    assert {r["metric"]["datname"] for r in sizes} >= {"postgres"}
    assert all(float(r["value"][1]) > 0 for r in sizes)
    # Host: CPU busy and memory used are shares; load is a number
    for title in ("CPU busy", "Memory used", "Disk space used"):
        values = [
            float(r["value"][1]) for r in _instant(infra, by_title[title].queries[0].promql or "")
        ]
        assert values and all(0 <= v <= 1 for v in values), (title, values)
    # Processes: every exporter is a Go program exposing process_* series
    rss = _instant(infra, by_title["Resident memory"].queries[0].promql or "")
    assert {r["metric"]["job"] for r in rss} == set(JOBS)
    assert all(float(r["value"][1]) > 1e6 and math.isfinite(float(r["value"][1])) for r in rss)


def test_a_target_that_stops_is_down(make_server: Callable[..., Server], exporters: Any) -> None:
    # A port in our range where nothing listens: the Targets panel says "down"
    jobs = [{"job_name": "gone", "targets": ["127.0.0.1:19399"], "interval_s": 1, "timeout_s": 1}]
    srv = make_server(auth={"required": False}, metrics={"scrape": jobs})
    targets = INFRA.sections[0].panels[0]
    got = eventually(lambda: _instant(srv, targets.queries[0].promql or ""), 20, 0.25)
    assert [(r["metric"]["job"], targets.value_map[r["value"][1]]) for r in got] == [
        ("gone", "down")
    ]
