"""Grafana provisioning files and dashboards: valid JSON/YAML, required fields, valid PromQL."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.alerting.exports.conftest import run, tool
from watchkeeper.cli._export import grafana_files

#: Grafana's own variables, replaced by values so promtool can parse the queries.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$__range": "1h", "$project": ".*", "$service": ".*"}


def dashboards() -> dict[str, dict]:  # type: ignore[type-arg]
    files = grafana_files("http://prometheus:9090", "/dashboards")
    return {name: json.loads(text) for name, text in files.items() if name.endswith(".json")}


def test_provisioning_yaml() -> None:
    files = grafana_files("http://prometheus:9090", "/var/lib/grafana/dashboards/wk")
    ds = yaml.safe_load(files["provisioning/datasources/watchkeeper.yaml"])
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert source["uid"] == "watchkeeper-prometheus"
    prov = yaml.safe_load(files["provisioning/dashboards/watchkeeper.yaml"])
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/wk"


def test_dashboards_have_the_required_fields() -> None:
    boards = dashboards()
    assert sorted(boards) == [
        "dashboards/watchkeeper-ai-quality.json",
        "dashboards/watchkeeper-cost.json",
        "dashboards/watchkeeper-system-health.json",
    ]
    uids = set()
    for board in boards.values():
        for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
            assert key in board
        uids.add(board["uid"])
        variables = {v["name"] for v in board["templating"]["list"]}
        assert variables == {"datasource", "project", "service"}
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for p in board["panels"]:
            assert p["type"] in ("timeseries", "stat")
            assert set(p["gridPos"]) == {"x", "y", "w", "h"}
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
            assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"])
    assert len(uids) == 3


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = []
    for board in dashboards().values():
        for p in board["panels"]:
            for t in p["targets"]:
                expr = t["expr"]
                for var, value in SUBSTITUTIONS.items():
                    expr = expr.replace(var, value)
                rules.append({"record": f"dashboard:query_{len(rules)}:check", "expr": expr})
    (tmp_path / "queries.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]})
    )
    out = run(tool("promtool"), "check", "rules", tmp_path / "queries.yml")
    assert f"SUCCESS: {len(rules)} rules found" in out


def test_dashboard_metrics_are_the_ones_server_and_sdk_register() -> None:
    from prometheus_client import CollectorRegistry

    from watchkeeper.alerting import _promql
    from watchkeeper.sdk._metrics import SdkMetrics
    from watchkeeper.server._span_metrics import SpanMetrics

    registry = CollectorRegistry()
    SpanMetrics(registry)
    SdkMetrics(registry)
    registered = {family.name for family in registry.collect()}
    used = [
        _promql.SPANS, _promql.DURATION, _promql.COST, _promql.TOKENS, _promql.HTTP_DURATION,
        _promql.GENAI_DURATION, _promql.GENAI_TOKENS, _promql.GUARD_CALLS, _promql.GUARD_DURATION,
    ]  # fmt: skip
    # prometheus-client names a counter family without its `_total` suffix
    assert {name.removesuffix("_total") for name in used} <= registered
    queries = " ".join(t["expr"] for b in dashboards().values() for p in b["panels"]
                       for t in p["targets"])  # fmt: skip
    assert all(name in queries for name in used)
