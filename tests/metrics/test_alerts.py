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
from watchkeeper.alerting import PromQLReader, Signals, evaluate, load_alerting_config
from watchkeeper.alerting._fetch import fetch
from watchkeeper.model import Sample
from watchkeeper.query import Engine
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.metrics import MetricsStore


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


RULES_FILE = """
groups:
  - name: queues
    rules:
      - record: queue:depth:sum
        expr: sum(queue_depth)
      - alert: QueueBacklog
        expr: queue_depth{queue="mail"} > 10
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.queue }}: {{ $value }} waiting"}
"""


def test_a_prometheus_rules_file_loads_through_the_api_and_fires(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = make_server(auth={"required": False}, alerting=_alerting(receiver.url))
    url = f"{server.url}/api/v1/rules/prometheus"
    headers = {"content-type": "application/yaml"}
    dry = httpx.post(url, params={"dry_run": "true"}, content=RULES_FILE, headers=headers)
    assert dry.status_code == 201, dry.text
    assert [r["id"] for r in dry.json()["rules"]] == ["queues.QueueBacklog"]
    assert httpx.get(f"{server.url}/api/v1/rules/queues.QueueBacklog").status_code == 404
    [skipped] = dry.json()["skipped"]
    assert skipped["name"] == "queue:depth:sum" and "not evaluated" in skipped["reason"]

    bad = httpx.post(url, content=RULES_FILE.replace("> 10", ">"), headers=headers)
    assert bad.status_code == 400
    assert "rule 2 (QueueBacklog): expr: 1:28: parse error" in bad.json()["error"]

    loaded = httpx.post(url, content=RULES_FILE, headers=headers)
    assert loaded.status_code == 201, loaded.text
    rule = httpx.get(f"{server.url}/api/v1/rules/queues.QueueBacklog").json()
    assert rule["kind"] == "promql" and rule["display"]["condition"].startswith("queue_depth")

    gauge(server.url, "queue_depth", {"mail": 40.0}, time.time())
    server.flush()
    [firing] = eventually(_bodies(receiver, "firing"), 15)
    assert firing["summary"] == "mail: 40 waiting"
    assert firing["labels"]["alertname"] == "QueueBacklog"


def test_a_rule_whose_expression_does_not_parse_is_refused_with_its_position(
    server: Server,
) -> None:
    body = {**RULE, "expr": "sum(rate(queue_depth[5m])"}
    r = httpx.post(f"{server.url}/api/v1/rules", json=body, timeout=10)
    assert r.status_code == 400
    assert "expr: 1:26: parse error: unclosed left parenthesis" in r.json()["error"]
    draft = httpx.post(f"{server.url}/api/v1/rules/test", json=RULE, timeout=10)
    assert draft.status_code == 200, draft.text


def _samples(name: str, labels: dict[str, str], points: list[tuple[float, float]]) -> list[Sample]:
    lb = tuple(sorted({"__name__": name, **labels}.items()))
    return [Sample(lb, round(t * 1000), v) for t, v in points]


NOW = 1_800_000_000.0
HOST = {"instance": "web-1:9100", "job": "node"}
DISK = {**HOST, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
PG = {"instance": "db:9187", "job": "postgres"}
REDIS = {"instance": "cache:9121", "job": "redis"}


def _infrastructure(healthy: bool) -> list[Sample]:
    """Seven hours of exporter series every minute, in trouble unless `healthy`."""
    times = [NOW - 7 * 3600 + 60 * i for i in range(7 * 60 + 1)]
    size = 100e9
    # Unhealthy: 30 GB free, losing 2 GB an hour (full in 15 h); healthy: 80 GB, steady.
    free = [(t, (80e9 if healthy else 30e9 + 2e9 * (NOW - t) / 3600)) for t in times]
    out = _samples("up", {**PG}, [(t, 1.0 if healthy else 0.0) for t in times])
    out += _samples("node_filesystem_avail_bytes", DISK, free)
    out += _samples("node_filesystem_size_bytes", DISK, [(t, size) for t in times])
    out += _samples("node_filesystem_readonly", DISK, [(t, 0.0) for t in times])
    available = 20e9 if healthy else 1e9
    out += _samples("node_memory_MemAvailable_bytes", HOST, [(t, available) for t in times])
    out += _samples("node_memory_MemTotal_bytes", HOST, [(t, 16e9) for t in times])
    for state, n in (("active", 30 if healthy else 60), ("idle", 10 if healthy else 28)):
        labels = {**PG, "datname": "shop", "state": state}
        out += _samples("pg_stat_activity_count", labels, [(t, float(n)) for t in times])
    out += _samples("pg_settings_max_connections", PG, [(t, 100.0) for t in times])
    evicted = [(t, 0.0 if healthy else float(i * 5)) for i, t in enumerate(times)]
    out += _samples("redis_evicted_keys_total", REDIS, evicted)
    used = 0.5e9 if healthy else 0.95e9
    out += _samples("redis_memory_used_bytes", REDIS, [(t, used) for t in times])
    out += _samples("redis_memory_max_bytes", REDIS, [(t, 1e9) for t in times])
    return sorted(out, key=lambda s: s.t_ms)


def test_the_starter_exporter_rules_fire_on_trouble_only() -> None:

    rules = [r for r in load_alerting_config({}).rules if r.kind == "promql"]
    assert len(rules) == 6
    seen: dict[bool, dict[str, list[dict[str, str]]]] = {}
    spans = DuckDBStore(None)
    for healthy in (True, False):
        store = MetricsStore(None)
        assert store.write("default", _infrastructure(healthy)).written
        reader = PromQLReader(Engine(store))
        fired = {}
        for rule in rules:
            rule = rule.model_copy(update={"project": "default"})
            assert all(reader.has_metric("default", m) for m in rule.needs_metrics())
            data = fetch(spans, rule, NOW, {}, signals=Signals(reader))
            fired[rule.id] = [dict(o.labels) for o in evaluate(rule, data, NOW).observations]
        seen[healthy] = fired
        store.close()
    assert all(v == [] for v in seen[True].values()), seen[True]
    trouble = seen[False]
    assert trouble["target-down"] == [PG]
    assert trouble["disk-filling-up"] == [DISK]
    assert trouble["host-memory-high"] == [HOST]
    assert trouble["postgres-connections-near-max"] == [{"instance": "db:9187"}]
    assert trouble["redis-evictions"] == [REDIS]
    assert trouble["redis-memory-near-max"] == [REDIS]


def test_starter_exporter_rules_apply_only_where_their_metrics_are(server: Server) -> None:
    def rule_ids() -> set[str]:
        items = httpx.get(f"{server.url}/api/v1/rules", timeout=10).json()["items"]
        return {r["id"] for r in items}

    assert "high-timeout-rate" in rule_ids()
    assert not rule_ids() & {"target-down", "redis-evictions", "host-memory-high"}
    gauge(server.url, "up", {"mail": 1.0}, time.time())
    server.flush()
    assert "target-down" in rule_ids()
    assert not rule_ids() & {"redis-evictions", "host-memory-high"}


def test_a_silence_on_a_series_label_mutes_that_series_alert_only(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = make_server(auth={"required": False}, alerting=_alerting(receiver.url, RULE))
    silence = {"matchers": ["queue=sms", "alertname=QueueTooDeep"], "duration": "1h"}
    assert httpx.post(f"{server.url}/api/v1/silences", json=silence).status_code == 201
    gauge(server.url, "queue_depth", {"mail": 50.0, "sms": 12.5}, time.time())
    server.flush()

    def muted() -> list[dict[str, Any]]:
        items = httpx.get(f"{server.url}/api/v1/alerts/history", timeout=10).json()["items"]
        return [h for h in items if h["event"] == "firing" and h["muted"]]

    [sms] = eventually(muted, 15)
    assert sms["labels"]["queue"] == "sms" and sms["muted"].startswith("silenced by")
    firing = eventually(_bodies(receiver, "firing"), 15)
    assert [b["labels"]["queue"] for b in firing] == ["mail"]
