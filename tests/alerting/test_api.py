"""The alerting HTTP API on the real app (lifespan, meta DB, DuckDB store, webhook channel)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.alerting._receiver import Receiver
from tests.alerting._spans import requests
from tests.eventually import eventually
from watchkeeper.config import load_config
from watchkeeper.server._roles import Role
from watchkeeper.server.app import create_app

SLO = {"id": "chat-avail", "objective": "99%", "filters": {"service": "chat", "scope": "requests"}}
LAT = {"id": "chat-latency", "sli": "latency", "latency_threshold_ms": 1000, "objective": 0.9}


@pytest.fixture
def client(tmp_path: Path, receiver: Receiver) -> Iterator[TestClient]:
    alerting = {
        "interval": 3600,  # the loop runs once at start; tests drive the rest
        "channels": [{"type": "webhook", "name": "hook", "url": receiver.url}],
        "slos": [SLO, LAT],
    }
    cfg = load_config(None, env={}, overrides={"server": {"data_dir": tmp_path / "d"},
                                               "alerting": alerting})  # fmt: skip
    with TestClient(create_app(cfg)) as c:
        yield c


@pytest.mark.slow
def test_rule_crud_enable_disable_and_test(client: TestClient) -> None:
    rule = {"id": "slow", "kind": "latency", "statistic": "p95", "threshold": 500, "window": "5m"}
    created = client.post("/api/v1/rules", json=rule)
    assert created.status_code == 201 and created.json()["source"] == "api"
    assert client.post("/api/v1/rules", json=rule).status_code == 409  # id taken (was 400)
    ids = [r["id"] for r in client.get("/api/v1/rules").json()["items"]]
    assert "slow" in ids and "high-timeout-rate" in ids and "slo-chat-avail-burn-1h" in ids
    updated = client.put("/api/v1/rules/slow", json={**rule, "threshold": 900}).json()
    assert updated["threshold"] == 900 and updated["id"] == "slow"
    assert client.post("/api/v1/rules/slow/disable").json()["enabled"] is False
    assert client.get("/api/v1/rules/slow").json()["enabled"] is False
    assert client.post("/api/v1/rules/slow/enable").json()["enabled"] is True
    assert client.get("/api/v1/rules/slow").json()["threshold"] == 900  # enable kept the edit

    svc = client.app.state.services  # type: ignore[attr-defined]
    svc.store.write(requests(time.time(), 20, duration_ms=800.0))
    tested = client.post("/api/v1/rules/slow/test").json()
    assert tested["breaching"] is False  # 800 ms < 900
    client.put("/api/v1/rules/slow", json={**rule, "threshold": 700})
    tested = client.post("/api/v1/rules/slow/test").json()
    assert tested["breaching"] is True and tested["observations"][0]["value"] == pytest.approx(800)
    draft = {**rule, "id": "draft", "threshold": 100}
    tested = client.post("/api/v1/rules/test", json=draft).json()
    assert tested["rule_id"] == "draft" and tested["breaching"] is True
    assert client.get("/api/v1/rules/draft").status_code == 404  # a draft is not stored
    assert client.get("/api/v1/notifications").json()["items"] == []  # test never notifies

    assert client.delete("/api/v1/rules/slow").status_code == 204
    assert client.get("/api/v1/rules/slow").status_code == 404
    # A rule of the config file is hidden on delete.
    assert client.delete("/api/v1/rules/error-spike").status_code == 204
    assert "error-spike" not in [r["id"] for r in client.get("/api/v1/rules").json()["items"]]


def test_a_rule_read_with_get_can_be_put_back_as_it_is(client: TestClient) -> None:
    """Every rule the API lists (config, starter, SLO burn-rate and API rules, every kind)
    goes back through PUT unchanged: what GET adds (`source`, `display`) is dropped."""
    for kind in client.get("/api/v1/rule-kinds").json()["items"]:
        example = {**kind["example"], "kind": kind["kind"], "id": f"round-{kind['kind']}"}
        if "slo" in example:
            example["slo"] = SLO["id"]  # one of this server's
        assert client.post("/api/v1/rules", json=example).status_code == 201, example
    rules = client.get("/api/v1/rules").json()["items"]
    assert len({r["kind"] for r in rules}) > 5
    for rule in rules:
        put = client.put(f"/api/v1/rules/{rule['id']}", json=rule)
        assert put.status_code == 200, (rule, put.json())
        assert {k: v for k, v in put.json().items() if k != "source"} == {
            k: v for k, v in rule.items() if k != "source"
        }  # a config rule put back is overridden from the API


@pytest.mark.slow
def test_rule_errors(client: TestClient) -> None:
    bad = client.post("/api/v1/rules", json={"id": "x", "kind": "count", "window": "soon"})
    assert bad.status_code == 400 and "30s, 5m" in bad.json()["error"]
    for bare in ("300", "2.5"):  # seconds in the config file, milliseconds as JSON numbers
        bare_rule = {"id": "x", "kind": "count", "threshold": 1, "window": bare}
        bad = client.post("/api/v1/rules", json=bare_rule)
        assert bad.status_code == 400 and "has no unit" in bad.json()["error"]
    ok = client.post("/api/v1/rules", json={**bare_rule, "window": "300ms"})
    assert ok.status_code == 201 and ok.json()["window"] == 300
    unknown = client.post("/api/v1/rules", json={"id": "x", "kind": "count", "channels": ["nope"]})
    assert unknown.status_code == 400 and "unknown channels" in unknown.json()["error"]
    assert client.post("/api/v1/rules/missing/test").status_code == 404


@pytest.mark.slow
def test_silences(client: TestClient) -> None:
    made = client.post("/api/v1/silences", json={"matchers": ["service=~chat.*"], "duration": "1h",
                                                "comment": "deploy"})  # fmt: skip
    assert made.status_code == 201
    silence = made.json()
    assert silence["active"] and silence["created_by"] == "api"
    assert silence["matchers"] == [{"name": "service", "op": "=~", "value": "chat.*"}]
    assert [s["id"] for s in client.get("/api/v1/silences").json()["items"]] == [silence["id"]]
    assert client.delete(f"/api/v1/silences/{silence['id']}").status_code == 200
    assert client.get("/api/v1/silences").json()["items"] == []
    assert client.delete(f"/api/v1/silences/{silence['id']}").status_code == 404
    bad = client.post("/api/v1/silences", json={"matchers": ["x=~("], "duration": "1h"})
    assert bad.status_code == 400


@pytest.mark.slow
def test_channels_and_test_notification(client: TestClient, receiver: Receiver) -> None:
    assert client.get("/api/v1/channels").json()["items"] == [
        {"name": "hook", "type": "webhook", "severities": ["critical", "warning", "info"]}
    ]
    ok = client.post("/api/v1/channels/hook/test")
    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert receiver.received[0]["kind"] == "test"
    receiver.status = 500
    failed = client.post("/api/v1/channels/hook/test")
    assert failed.status_code == 502 and "HTTP 500" in failed.json()["error"]
    assert client.post("/api/v1/channels/nope/test").status_code == 404


@pytest.mark.slow
def test_slos_with_budget_and_burndown(client: TestClient) -> None:
    svc = client.app.state.services  # type: ignore[attr-defined]
    now = time.time()
    svc.store.write(requests(now - 7200, 1000, errors=5, duration_ms=500.0))
    svc.store.write(requests(now - 60, 100, errors=2, duration_ms=1500.0))
    items = {s["id"]: s for s in client.get("/api/v1/slos").json()["items"]}
    avail = items["chat-avail"]
    assert (avail["total"], avail["bad"]) == (1100, 7)
    assert avail["budget_remaining"] == pytest.approx(1 - 7 / 11)
    assert "burndown" not in avail
    assert items["chat-latency"]["bad"] == 100  # the slow ones
    one_hour = avail["burn_rates"][0]
    assert one_hour["long_window_ms"] == 3_600_000
    assert one_hour["long_burn_rate"] == pytest.approx(2.0)
    detail = client.get("/api/v1/slos/chat-avail").json()
    points = detail["burndown"]
    assert points and points[-1]["total"] == 1100
    assert points[-1]["budget_remaining"] == pytest.approx(1 - 7 / 11)
    assert client.get("/api/v1/slos/nope").status_code == 404


@pytest.mark.slow
def test_alerts_history_and_notifications(client: TestClient, receiver: Receiver) -> None:
    svc = client.app.state.services  # type: ignore[attr-defined]
    rule = {
        "kind": "outcome_ratio",
        "outcomes": ["timeout"],
        "threshold": "10%",
        "group_by": "service",
        "severity": "critical",
        "filters": {"scope": "requests"},
    }
    client.put("/api/v1/rules/high-timeout-rate", json=rule)  # no `for`, no min_count
    svc.store.write(requests(time.time(), 40, timeouts=20))
    client.portal.call(svc.alerting.run_cycle)  # type: ignore[union-attr]
    # 50% timeouts also burn the availability SLO's budget in every window.
    expected = ["high-timeout-rate", "slo-chat-avail-burn-1d", "slo-chat-avail-burn-1h",
                "slo-chat-avail-burn-3d", "slo-chat-avail-burn-6h"]  # fmt: skip
    firing = {a["rule_id"]: a for a in client.get("/api/v1/alerts?state=firing").json()["items"]}
    assert sorted(firing) == expected
    timeouts = firing["high-timeout-rate"]
    assert timeouts["labels"]["service"] == "chat" and len(timeouts["trace_ids"]) == 5
    assert timeouts["severity"] == "critical" and timeouts["value"] == pytest.approx(0.5)
    assert timeouts["summary"] == "high-timeout-rate: 50% > 10%"  # the default template
    history = client.get("/api/v1/alerts/history").json()["items"]
    assert sorted(h["rule_id"] for h in history if h["event"] == "firing") == expected
    assert client.get("/api/v1/alerts?state=pending").json()["items"] == []
    # Burn-rate alerts show requests that spent the budget (the timed-out ones).
    from watchkeeper.store import SpanFilter

    burn_ids = firing["slo-chat-avail-burn-1h"]["trace_ids"]
    page = svc.store.search_spans(SpanFilter("default", outcomes=("timeout",)), limit=100)
    assert len(burn_ids) == 5 and set(burn_ids) <= {s.trace_id for s in page.items}
    received = receiver.wait_for(5, timeout=10)
    assert sorted(b["rule_id"] for b in received) == expected
    log = eventually(
        lambda: client.get("/api/v1/notifications").json()["items"],
        10,
        0.1,
        until=lambda log: all(item["state"] == "delivered" for item in log),
    )
    assert len(log) == 5 and {item["channel"] for item in log} == {"hook"}
    assert all(item["attempt_log"][0]["result"] == "ok" for item in log)


@pytest.mark.slow
def test_starter_rules_apply_to_every_project_separately(client: TestClient) -> None:
    svc = client.app.state.services  # type: ignore[attr-defined]
    _, acme_key = svc.keys.create("acme", role=Role.EDITOR)
    _, default_key = svc.keys.create("default", role=Role.EDITOR)
    acme = {"Authorization": f"Bearer {acme_key}"}
    mine = {"Authorization": f"Bearer {default_key}"}
    acme_rules = client.get("/api/v1/rules", headers=acme).json()["items"]
    assert {r["id"] for r in acme_rules} >= {"high-timeout-rate", "service-down"}
    assert all(r["project"] == "acme" for r in acme_rules)
    assert not any(r["id"].startswith("slo-") for r in acme_rules)  # the SLOs are default's
    # Disabling a starter rule in one project leaves it on in the other.
    client.post("/api/v1/rules/service-down/disable", headers=acme)
    assert client.get("/api/v1/rules/service-down", headers=acme).json()["enabled"] is False
    assert client.get("/api/v1/rules/service-down", headers=mine).json()["enabled"] is True
    # Each project's spans fire its own alert.
    svc.store.write(requests(time.time(), 40, timeouts=20, project="acme"))
    client.put("/api/v1/rules/high-timeout-rate", headers=acme, json={
        "kind": "outcome_ratio", "outcomes": ["timeout"], "threshold": "10%",
        "group_by": "service", "filters": {"scope": "requests"}})  # fmt: skip
    client.portal.call(svc.alerting.run_cycle)
    firing = client.get("/api/v1/alerts?state=firing", headers=acme).json()["items"]
    assert [(a["rule_id"], a["project"]) for a in firing] == [("high-timeout-rate", "acme")]
    assert client.get("/api/v1/alerts?state=firing", headers=mine).json()["items"] == []


def test_rule_kinds_channel_types_and_how_a_rule_is_shown_come_from_the_registries(
    client: TestClient,
) -> None:
    from watchkeeper.alerting.channels import CHANNEL_TYPES
    from watchkeeper.alerting.kinds import KINDS

    kinds = client.get("/api/v1/rule-kinds").json()["items"]
    assert [k["kind"] for k in kinds] == list(KINDS)
    latency = next(k for k in kinds if k["kind"] == "latency")
    assert latency["label"] == "Latency" and latency["groupable"] is True
    statistic = latency["parameters"]["statistic"]
    assert statistic["enum"] == ["p50", "p90", "p95", "p99", "avg", "max"]
    assert statistic["default"] == "p95" and "threshold" not in latency["parameters"]
    assert next(k for k in kinds if k["kind"] == "score")["groupable"] is False

    types = client.get("/api/v1/channel-types").json()["items"]
    assert [t["type"] for t in types] == list(CHANNEL_TYPES)
    slack = next(t for t in types if t["type"] == "slack")
    assert slack["label"] == "Slack" and slack["secrets"] == ["webhook_url"]
    assert slack["required"] == ["name", "webhook_url"]
    email = next(t for t in types if t["type"] == "email")
    assert email["secrets"] == ["password"] and "to" in email["required"]

    rules = {r["id"]: r for r in client.get("/api/v1/rules").json()["items"]}
    assert rules["error-spike"]["display"] == {
        "watches": "share of error", "unit": "%", "condition": None,
    }  # fmt: skip
    assert rules["cost-anomaly"]["display"]["condition"] == "> 1.5× baseline"
    assert rules["slo-chat-avail-burn-1h"]["display"]["watches"] == "burn rate of SLO chat-avail"
    assert "statistic" not in rules["error-spike"]  # a rule shows its own kind's parameters
