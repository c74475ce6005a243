"""PromQL alert rules end to end: samples in through `POST /v1/metrics`, the rule fires for
each series of its result at a real webhook receiver, with its labels and templated
annotations, and resolves once the series leaves the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from tests.alerting._receiver import Receiver
from tests.eventually import eventually
from tests.metrics.conftest import Server


def gauge(url: str, name: str, points: dict[str, float], at_s: float) -> None:
    """One OTLP/JSON gauge point per `queue` label value, at `at_s`."""
    data_points = [
        {
            "timeUnixNano": str(round(at_s * 1000) * 1_000_000),
            "asDouble": v,
            "attributes": [{"key": "queue", "value": {"stringValue": q}}],
        }
        for q, v in points.items()
    ]
    body = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": name, "gauge": {"dataPoints": data_points}}]}]}]}  # fmt: skip
    r = httpx.post(
        f"{url}/v1/metrics",
        content=orjson.dumps(body),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


RULE = {
    "id": "deep-queue",
    "name": "QueueTooDeep",
    "kind": "promql",
    "expr": "queue_depth > 10",
    "for": "0s",
    "severity": "critical",
    "labels": {"team": "infra", "where": "{{ $labels.queue }}-queue"},
    "annotations": {
        "summary": "queue {{ $labels.queue }} holds {{ $value }} jobs",
        "description": "{{ $value | humanize }} over 10 for {{ $labels.where }}",
        "runbook_url": "https://runbooks.example/queues",
    },
}


def _alerting(hook: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "interval": 1,
        "starter_rules": False,
        "retry_base": 0.5,
        "retry_max": 1,
        "rules": list(rules),
        "channels": [{"type": "webhook", "name": "hook", "url": hook}],
    }


def _bodies(receiver: Receiver, status: str) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [b for b in list(receiver.received) if b.get("status") == status]


def test_each_series_fires_its_own_alert_then_resolves(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = make_server(auth={"required": False}, alerting=_alerting(receiver.url, RULE))
    gauge(server.url, "queue_depth", {"mail": 50.0, "sms": 12.5, "push": 3.0}, time.time())
    server.flush()

    firing = eventually(_bodies(receiver, "firing"), 15, until=lambda b: len(b) >= 2)
    assert len(firing) == 2, firing
    by_queue = {b["labels"]["queue"]: b for b in firing}
    assert set(by_queue) == {"mail", "sms"}
    mail = by_queue["mail"]
    assert mail["rule_id"] == "deep-queue" and mail["severity"] == "critical"
    assert mail["labels"]["alertname"] == "QueueTooDeep"
    assert mail["labels"]["team"] == "infra" and mail["labels"]["where"] == "mail-queue"
    assert "__name__" not in mail["labels"]
    assert mail["summary"] == "queue mail holds 50 jobs"
    assert by_queue["sms"]["summary"] == "queue sms holds 12.5 jobs"
    assert mail["value"] == 50.0
    assert mail.get("description") == "50 over 10 for mail-queue"
    assert mail["annotations"]["runbook_url"] == "https://runbooks.example/queues"
    assert by_queue["mail"]["fingerprint"] != by_queue["sms"]["fingerprint"]

    # The mail queue drains: its alert resolves, the sms one keeps firing.
    gauge(server.url, "queue_depth", {"mail": 2.0, "sms": 30.0, "push": 3.0}, time.time())
    server.flush()
    resolved = eventually(_bodies(receiver, "resolved"), 15)
    assert [b["labels"]["queue"] for b in resolved] == ["mail"]
    assert resolved[0]["fingerprint"] == mail["fingerprint"]
    alerts = httpx.get(f"{server.url}/api/v1/alerts", timeout=10).json()["items"]
    states = {a["labels"]["queue"]: a["status"] for a in alerts}
    assert states == {"mail": "resolved", "sms": "firing"}


def test_for_holds_an_alert_pending(make_server: Callable[..., Server], receiver: Receiver) -> None:
    slow = {**RULE, "id": "slow", "for": "1h"}
    server = make_server(auth={"required": False}, alerting=_alerting(receiver.url, slow))
    gauge(server.url, "queue_depth", {"mail": 50.0}, time.time())
    server.flush()

    def states() -> list[str]:
        items = httpx.get(f"{server.url}/api/v1/alerts", timeout=10).json()["items"]
        return [a["status"] for a in items]

    assert eventually(states, 15) == ["pending"]
    assert receiver.received == []
