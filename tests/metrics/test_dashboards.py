"""Dashboards as YAML files through the API: the shipped ones, a user's saved, replaced and
deleted (the file on disk follows), roles and projects, bad files and bad bodies, and the
Grafana export of each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.metrics.conftest import Server
from watchkeeper.dashboards import SHIPPED_DIR, read_dashboard
from watchkeeper.server._roles import Role

REQUESTS = 'sum(rate(http_server_request_duration_seconds_count{job=~"$service"}[5m]))'
BOARD = {
    "id": "checkout",
    "title": "Checkout",
    "variables": ["service"],
    "sections": [
        {
            "panels": [
                {
                    "title": "Requests",
                    "unit": "reqps",
                    "queries": [
                        {
                            "promql": REQUESTS,
                            "legend": "all",
                        }
                    ],
                    "grid": {"x": 0, "y": 0, "w": 12, "h": 8},
                },
                {
                    "title": "p95 (traces)",
                    "unit": "ms",
                    "queries": [{"spans": {"measure": "p95_ms"}}],
                    "grid": {"x": 12, "y": 0, "w": 12, "h": 8},
                },
            ]
        }
    ],
}


class Client:
    """A key of a project with a role, calling the dashboards API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str = "", body: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}/api/v1/dashboards{path}", json=body, headers=self.headers
        )


@pytest.fixture
def world(make_server: Callable[..., Server], tmp_path: Path) -> dict[str, Any]:
    srv = make_server(auth={"required": True}, dashboards={"path": str(tmp_path / "boards")})
    keys = srv.services.keys
    clients = {
        name: Client(srv.url, keys.create(project, name, role=role)[1])
        for name, project, role in [
            ("editor", "shop", Role.EDITOR),
            ("viewer", "shop", Role.VIEWER),
            ("other", "lab", Role.EDITOR),
            ("admin", "shop", Role.ADMIN),
        ]
    }
    return {"server": srv, "dir": tmp_path / "boards", **clients}


def test_the_shipped_dashboards_are_listed_and_read_only(world: dict[str, Any]) -> None:
    viewer = world["viewer"]
    items = viewer.call("GET").json()["items"]
    assert [(i["id"], i["source"], i["editable"]) for i in items] == [
        ("fastapi-service", "shipped", False),
        ("infrastructure", "shipped", False),
        ("scraper-job", "shipped", False),
    ]
    infra = viewer.call("GET", "/infrastructure").json()
    assert infra["dashboard"] == read_dashboard(SHIPPED_DIR / "infrastructure.yaml").model_dump(
        mode="json"
    )
    edited = {**infra["dashboard"], "title": "Mine"}
    answer = world["editor"].call("PUT", "/infrastructure", edited)
    assert answer.status_code == 409 and "shipped" in answer.json()["error"]
    assert world["editor"].call("DELETE", "/infrastructure").status_code == 409


def test_a_dashboard_saved_is_a_yaml_file(world: dict[str, Any]) -> None:
    editor, viewer, path = world["editor"], world["viewer"], world["dir"] / "checkout.yaml"
    created = editor.call("POST", "", BOARD)
    assert created.status_code == 201, created.text
    assert created.json()["dashboard"]["project"] == "shop"
    on_disk = yaml.safe_load(path.read_text())
    assert on_disk["id"] == "checkout" and on_disk["project"] == "shop"
    assert on_disk["sections"][0]["panels"][1]["queries"] == [{"spans": {"measure": "p95_ms"}}]
    assert editor.call("POST", "", BOARD).status_code == 409  # the id is taken
    # moved and resized: the file says so
    changed = created.json()["dashboard"]
    changed["sections"][0]["panels"][0]["grid"] = {"x": 12, "y": 8, "w": 12, "h": 6}
    assert editor.call("PUT", "/checkout", changed).status_code == 200
    grid = yaml.safe_load(path.read_text())["sections"][0]["panels"][0]["grid"]
    assert grid == {"x": 12, "y": 8, "h": 6}  # w 12 is the default, left out
    assert viewer.call("GET", "/checkout").json()["dashboard"]["sections"][0]["panels"][0][
        "grid"
    ] == {"x": 12, "y": 8, "w": 12, "h": 6}
    # a viewer reads, an editor changes; another project does not see it
    assert viewer.call("PUT", "/checkout", changed).status_code == 403
    assert world["other"].call("GET", "/checkout").status_code == 404
    assert "checkout" not in [i["id"] for i in world["other"].call("GET").json()["items"]]
    assert editor.call("DELETE", "/checkout").status_code == 204
    assert not path.exists()
    assert viewer.call("GET", "/checkout").status_code == 404


def test_bad_dashboards_are_refused_with_the_reason(world: dict[str, Any]) -> None:
    editor = world["editor"]
    bad_promql = {**BOARD, "sections": [{"panels": [{"title": "x", "queries": [
        {"promql": "sum(rate(x[5m])"}]}]}]}  # fmt: skip
    answer = editor.call("POST", "", bad_promql)
    assert answer.status_code == 400
    assert "parse error" in answer.json()["error"] and "queries" in answer.json()["error"]
    too_wide = {**BOARD, "sections": [{"panels": [{"title": "x", "grid": {"x": 20, "w": 8},
        "queries": [{"promql": "up"}]}]}]}  # fmt: skip
    assert "x + w" in editor.call("POST", "", too_wide).json()["error"]
    foreign = {**BOARD, "project": "lab"}
    assert editor.call("POST", "", foreign).status_code == 400
    # every project's dashboard: an admin's change, not an editor's
    shared = {**BOARD, "project": "*"}
    assert editor.call("POST", "", shared).status_code == 403
    assert world["admin"].call("POST", "", shared).status_code == 201
    assert "checkout" in [i["id"] for i in world["other"].call("GET").json()["items"]]
    assert world["other"].call("DELETE", "/checkout").status_code == 403


def test_a_file_that_is_not_a_dashboard_is_reported(world: dict[str, Any]) -> None:
    world["dir"].mkdir(parents=True)
    (world["dir"] / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    (world["dir"] / "renamed.yaml").write_text(yaml.safe_dump({**BOARD, "project": "shop"}))
    body = world["viewer"].call("GET").json()
    problems = {p["file"]: p["error"] for p in body["problems"]}
    assert set(problems) == {"broken.yaml", "renamed.yaml"}
    assert "not YAML" in problems["broken.yaml"]
    assert "checkout.yaml" in problems["renamed.yaml"]
    assert len(body["items"]) == 3  # the shipped ones are still there


def test_grafana_export_of_a_dashboard(world: dict[str, Any]) -> None:
    editor = world["editor"]
    assert editor.call("POST", "", BOARD).status_code == 201
    model = editor.call("GET", "/checkout/grafana").json()
    assert model["title"] == "Checkout" and model["uid"] == "wk-checkout"
    first, second = model["panels"]
    assert first["targets"][0]["expr"] == BOARD["sections"][0]["panels"][0]["queries"][0]["promql"]
    assert first["fieldConfig"]["defaults"]["unit"] == "reqps"
    assert first["gridPos"] == {"x": 0, "y": 0, "w": 12, "h": 8}
    assert second["type"] == "text"  # a span query has no PromQL: said where to see it
    names = [v["name"] for v in model["templating"]["list"]]
    assert names == ["datasource", "service"]
    infra = editor.call("GET", "/infrastructure/grafana").json()
    rows = [p["title"] for p in infra["panels"] if p["type"] == "row"]
    assert rows == ["Targets", "Host", "PostgreSQL", "Redis", "Processes"]
    table = next(p for p in infra["panels"] if p["title"] == "Up")
    assert table["type"] == "table" and table["targets"][0]["instant"] is True


@pytest.mark.slow
def test_watchkeeper_export_grafana_writes_ours_and_promtool_accepts_every_query(
    tmp_path: Path,
) -> None:
    from tests.alerting.exports.conftest import run, tool
    from watchkeeper.cli._export import export_main

    boards = tmp_path / "conf" / "dashboards"
    boards.mkdir(parents=True)
    (boards / "checkout.yaml").write_text(yaml.safe_dump(BOARD))
    config = tmp_path / "conf" / "watchkeeper.yaml"
    config.write_text("server: {port: 4318}\n")  # dashboards/ beside it, by default
    out = tmp_path / "grafana"
    assert export_main(["grafana", "--config", str(config), "--out", str(out)], env={}) == 0
    written = sorted(p.name for p in (out / "dashboards").iterdir())
    assert {"watchkeeper-infrastructure.json", "watchkeeper-fastapi-service.json",
            "watchkeeper-scraper-job.json",
            "watchkeeper-checkout.json"} <= set(written)  # fmt: skip
    rules = []
    for path in (out / "dashboards").glob("watchkeeper-*.json"):
        for p in yaml.safe_load(path.read_text())["panels"]:
            for t in p.get("targets", []):
                expr = t["expr"]
                for var in ("$service", "$environment", "$job", "$instance"):
                    expr = expr.replace(var, ".*")
                expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
                expr = expr.replace("$project", ".*")
                rules.append({"record": f"dashboard:query_{len(rules)}:check", "expr": expr})
    (tmp_path / "queries.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]})
    )
    result = run(tool("promtool"), "check", "rules", tmp_path / "queries.yml")
    assert f"SUCCESS: {len(rules)} rules found" in result
