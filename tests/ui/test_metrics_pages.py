"""The metric pages in Chromium against a real server whose scraper reads Debian's node,
PostgreSQL and Redis exporters: the Infrastructure page, the metrics explorer, and
dashboards made, moved, resized, saved (a YAML file) and shown again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from playwright.sync_api import expect

from tests.eventually import eventually
from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server._roles import Role
from watchkeeper.server.app import build_services, create_app

from .conftest import ARTIFACTS, _context
from .test_pages import UNNAMED_CONTROLS

pytestmark = pytest.mark.browser
JOBS = ("node", "postgres", "redis")


@dataclass
class MetricsServer:
    """A server scraping the exporters, its editor key and its dashboards directory."""

    url: str
    token: str
    boards: Path

    def prom(self, query: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/prometheus/api/v1/query", params={"query": query},
                      headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result


@pytest.fixture(scope="module")
def metrics_server(exporters: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("metrics-ui")
    jobs = [{"job_name": n, "targets": [exporters.targets[n]], "interval_s": 1, "timeout_s": 1}
            for n in JOBS]  # fmt: skip
    config = load_config(env={}, overrides={
        "server": {"data_dir": str(data / "data"), "port": 0},
        "metrics": {"scrape": jobs}, "dashboards": {"path": str(data / "boards")},
    })  # fmt: skip
    svc = build_services(config)
    _, token = svc.keys.create("default", "ui", role=Role.EDITOR)
    with serve_in_thread(create_app(config, services=svc), name="metrics-ui-server") as url:
        srv = MetricsServer(url, token, data / "boards")
        # two scrapes of every target at least: rate() has two samples to go on
        counts = eventually(
            lambda: [float(x["value"][1]) for x in srv.prom("count_over_time(up[5m])")],
            30, 0.25, until=lambda c: len(c) == 3 and min(c) >= 3,
        )  # fmt: skip
        assert len(counts) == 3
        exporters.redis("SET", "ui:key", "v")
        exporters.redis("GET", "ui:key")
        yield srv


@pytest.fixture
def mpage(browser: Any, metrics_server: MetricsServer) -> Iterator[Any]:
    ctx = _context(browser, metrics_server, "light", with_key=True)  # type: ignore[arg-type]
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None
    )
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


def _loaded(page: Any) -> None:
    page.wait_for_function(
        "() => document.querySelector('main').getAttribute('aria-busy') === 'false'"
        " && !document.querySelector('.loading')"
    )


def _panel(page: Any, title: str) -> Any:
    return page.locator(f'.panel[data-panel="{title}"]')


def test_infrastructure_shows_every_exporter(mpage: Any, metrics_server: MetricsServer) -> None:
    mpage.goto("/infrastructure?range=15m&live=0")
    _loaded(mpage)
    sections = mpage.locator(".board-section").evaluate_all(
        "els => els.map(e => [e.dataset.section, e.dataset.testid === 'section-missing'])"
    )
    assert sections == [[s, False] for s in ("Targets", "Host", "PostgreSQL", "Redis", "Processes")]
    # every target up, as the scraper wrote it
    rows = (
        _panel(mpage, "Up")
        .locator("tr")
        .evaluate_all("rs => rs.map(r => [r.cells[0].innerText, r.cells[1].innerText])")
    )
    assert sorted(rows) == sorted([f"{j} {t}", "up"] for j, t in
                                  ((j, _target(metrics_server, j)) for j in JOBS))  # fmt: skip
    # charts drawn from the exporters' series: CPU, memory, Redis memory and its limit
    for title in ("CPU busy", "Memory used", "Connections", "Database size", "Resident memory"):
        expect(_panel(mpage, title).locator("svg path.line").first).to_be_attached()
    redis_memory = _panel(mpage, "Memory vs maxmemory")
    assert redis_memory.locator("svg path.line").count() == 2
    assert redis_memory.locator(".legend-item").all_inner_texts() == [
        f"used {_target(metrics_server, 'redis')}",
        f"maxmemory {_target(metrics_server, 'redis')}",
    ]
    # the y axis of a share is in percent
    labels = _panel(mpage, "Memory used").locator(".axis-label").all_text_contents()
    assert any(t.endswith("%") for t in labels), labels
    # replication: no replica in this world, and the panel says so
    expect(_panel(mpage, "Replication lag")).to_contain_text("No replica streams")
    assert mpage.evaluate(UNNAMED_CONTROLS) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    mpage.screenshot(path=str(ARTIFACTS / "infrastructure.png"), full_page=True)


def _target(srv: MetricsServer, job: str) -> str:
    (row,) = srv.prom(f'up{{job="{job}"}}')
    return str(row["metric"]["instance"])


def test_infrastructure_says_what_to_install(page: Any) -> None:
    # the UI suite's server has spans and no metrics at all
    page.goto("/infrastructure")
    _loaded(page)
    missing = page.get_by_test_id("section-missing")
    assert missing.count() == 5
    expect(page.locator('[data-section="Host"]')).to_contain_text(
        "apt install prometheus-node-exporter"
    )
    expect(page.locator('[data-section="Redis"]')).to_contain_text("prometheus-redis-exporter")
    expect(page.locator('[data-section="PostgreSQL"]')).to_contain_text(
        "prometheus-postgres-exporter"
    )


def test_the_explorer_builds_runs_and_edits_promql(
    mpage: Any, metrics_server: MetricsServer
) -> None:
    mpage.goto("/explore?range=15m&live=0")
    _loaded(mpage)
    mpage.get_by_label("Search metrics").fill("commands processed")
    item = mpage.locator('[data-metric="redis_commands_processed_total"]')
    expect(item).to_contain_text("counter")
    item.click()
    _loaded(mpage)
    promql = mpage.get_by_label("PromQL")
    assert promql.input_value() == "rate(redis_commands_processed_total[1m])"
    expect(mpage.locator("#explore-chart svg path.line")).to_have_count(1)
    assert mpage.evaluate(UNNAMED_CONTROLS) == []
    # sum by a label: the expression follows the choices
    mpage.get_by_label("Aggregate").select_option("sum")
    _loaded(mpage)
    mpage.get_by_label("By").select_option("instance")
    _loaded(mpage)
    assert mpage.get_by_label("PromQL").input_value() == (
        "sum by (instance) (rate(redis_commands_processed_total[1m]))"
    )
    # the traces of the same service (its job) and time range
    link = mpage.locator('#explore-traces a[data-service="redis"]')
    query = parse_qs(urlparse(link.get_attribute("href")).query)
    assert query["service"] == ["redis"] and "start" in query and "end" in query
    # by hand: the answer is our engine's, the same as the API's
    mpage.get_by_label("PromQL").fill('max(redis_memory_max_bytes{job="redis"})')
    mpage.get_by_role("button", name="Run").click()
    _loaded(mpage)
    assert parse_qs(urlparse(mpage.url).query)["q"] == ['max(redis_memory_max_bytes{job="redis"})']
    expect(mpage.locator("#explore-series td.num")).to_have_text(["67108864"])
    # a syntax error: the parser's message, not a blank chart
    mpage.get_by_label("PromQL").fill("sum(rate(up[5m])")
    mpage.get_by_role("button", name="Run").click()
    _loaded(mpage)
    expect(mpage.locator("#explore-chart .error")).to_contain_text("parse error")


def test_a_histogram_offers_quantiles(mpage: Any) -> None:
    mpage.goto("/explore?range=15m&live=0&metric=go_gc_duration_seconds")
    _loaded(mpage)
    # a summary in the Go exporters: quantiles as exposed, rate of observations, average
    options = mpage.get_by_label("Function").locator("option").all_inner_texts()
    assert options == ["quantiles as exposed", "observations per second", "average (sum / count)"]
    mpage.get_by_label("Function").select_option("avg")
    _loaded(mpage)
    assert mpage.get_by_label("PromQL").input_value() == (
        "sum (rate(go_gc_duration_seconds_sum[1m])) / sum (rate(go_gc_duration_seconds_count[1m]))"
    )


def test_a_dashboard_made_moved_resized_and_saved(
    mpage: Any, metrics_server: MetricsServer
) -> None:
    mpage.goto("/dashboards?range=15m&live=0")
    _loaded(mpage)
    assert mpage.locator("tbody tr").count() == 3  # the shipped ones
    mpage.get_by_role("button", name="New dashboard").click()
    mpage.locator("dialog.edit-dialog").get_by_label("Title").fill("Cache health")
    mpage.locator("dialog.edit-dialog").get_by_role("button", name="Apply").click()
    mpage.wait_for_url(re.compile(r"/dashboards/cache-health-\w+\?.*edit=1"))
    _loaded(mpage)
    board_id = urlparse(mpage.url).path.rsplit("/", 1)[1]
    # add a panel of a PromQL query; a wrong one is refused with the parser's message first
    mpage.get_by_role("button", name="+ Add panel").click()
    dialog = mpage.locator("dialog.edit-dialog")
    dialog.get_by_label("Title", exact=True).fill("Redis clients")
    dialog.get_by_label("PromQL").fill("redis_connected_clients{")
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.locator(".error")).to_contain_text("parse error")
    dialog.get_by_label("PromQL").fill('redis_connected_clients{job="redis"}')
    dialog.get_by_label("Legend").fill("{{instance}}")
    dialog.get_by_role("button", name="Apply").click()
    panel = _panel(mpage, "Redis clients")
    expect(panel.locator("svg path.line")).to_have_count(1)
    assert panel.get_attribute("data-grid") == "0,0,12,8"
    assert mpage.evaluate(UNNAMED_CONTROLS) == []
    # move two columns right and one row down; one row taller, two columns narrower
    panel.focus()
    for key in (
        "ArrowRight",
        "ArrowRight",
        "ArrowDown",
        "Shift+ArrowDown",
        "Shift+ArrowLeft",
        "Shift+ArrowLeft",
    ):
        mpage.keyboard.press(key)
    assert panel.get_attribute("data-grid") == "2,1,10,9"
    expect(mpage.locator(".save-status")).to_have_text("Unsaved changes")
    mpage.get_by_role("button", name="Save").click()
    mpage.wait_for_url(lambda u: "edit=1" not in u)  # saved: out of edit mode
    _loaded(mpage)
    saved = yaml.safe_load((metrics_server.boards / f"{board_id}.yaml").read_text())
    (panel_yaml,) = saved["sections"][0]["panels"]
    assert panel_yaml["grid"] == {"x": 2, "y": 1, "w": 10, "h": 9}
    assert panel_yaml["queries"] == [
        {"promql": 'redis_connected_clients{job="redis"}', "legend": "{{instance}}"}
    ]
    # shown again from the file, with the time range of the URL
    mpage.goto(f"/dashboards/{board_id}?range=6h&live=0")
    _loaded(mpage)
    assert _panel(mpage, "Redis clients").get_attribute("data-grid") == "2,1,10,9"
    expect(mpage.locator('.seg-btn[aria-pressed="true"]')).to_have_text("6h")
    legend = metrics_server.prom('redis_connected_clients{job="redis"}')[0]["metric"]["instance"]
    expect(_panel(mpage, "Redis clients").locator("svg")).to_have_attribute(
        "aria-label", "Redis clients"
    )
    assert legend
    mpage.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_a_shipped_dashboard_is_copied_to_edit(mpage: Any, metrics_server: MetricsServer) -> None:
    mpage.goto("/dashboards/infrastructure?range=15m&live=0")
    _loaded(mpage)
    assert mpage.get_by_role("button", name="Edit").count() == 0  # shipped: read-only
    mpage.get_by_role("button", name="Save a copy").click()
    dialog = mpage.locator("dialog.edit-dialog")
    expect(dialog.get_by_label("Title")).to_have_value("Infrastructure (copy)")
    dialog.get_by_role("button", name="Apply").click()
    mpage.wait_for_url(re.compile(r"/dashboards/infrastructure-copy-\w+"))
    _loaded(mpage)
    copies = list(metrics_server.boards.glob("infrastructure-copy-*.yaml"))
    assert len(copies) == 1
    copy = yaml.safe_load(copies[0].read_text())
    assert [s["title"] for s in copy["sections"]] == [
        "Targets",
        "Host",
        "PostgreSQL",
        "Redis",
        "Processes",
    ]
    assert copy["project"] == "default"


def test_span_panels_of_the_service_dashboard(page: Any) -> None:
    # the UI suite's server: traces of search-api (10 successes, 2 timeouts) and no metrics
    page.goto("/dashboards/fastapi-service?range=1h&live=0&service=search-api")
    _loaded(page)
    expect(page.locator('[data-section="HTTP"]')).to_contain_text("WatchkeeperMiddleware")
    requests = _panel(page, "Requests (traces)")
    assert set(requests.locator(".legend-item").all_inner_texts()) == {"success", "timeout"}
    bars = requests.locator("svg rect.bar")
    assert bars.count() > 0
    # the service variable filters the span queries: the select shows it
    assert page.get_by_label("Service").input_value() == "search-api"
    # requests' p95 drawn; search-api makes no LLM call (embeddings only): no second line
    assert _panel(page, "p95 latency (traces)").locator("svg path.line").count() == 1


def test_a_query_of_the_explorer_added_to_a_dashboard(
    mpage: Any, metrics_server: MetricsServer
) -> None:
    board = {"id": "redis-watch", "title": "Redis watch", "sections": [{"panels": []}]}
    r = httpx.post(f"{metrics_server.url}/api/v1/dashboards", json=board,
                   headers={"Authorization": f"Bearer {metrics_server.token}"})  # fmt: skip
    assert r.status_code == 201, r.text
    mpage.goto("/explore?range=15m&live=0&metric=redis_connected_clients")
    _loaded(mpage)
    mpage.get_by_role("button", name="Add to dashboard").click()
    dialog = mpage.locator("dialog.edit-dialog")
    dialog.get_by_label("dashboard").select_option(label="Redis watch")
    dialog.get_by_label("Panel title").fill("Clients")
    dialog.get_by_role("button", name="Apply").click()
    mpage.wait_for_url(re.compile(r"/dashboards/redis-watch"))
    _loaded(mpage)
    expect(_panel(mpage, "Clients").locator("svg path.line")).to_have_count(1)
    saved = yaml.safe_load((metrics_server.boards / "redis-watch.yaml").read_text())
    (panel,) = saved["sections"][0]["panels"]
    assert panel["queries"] == [{"promql": "redis_connected_clients"}]  # the empty legend left out
