"""Two `watchkeeper serve` processes sharing one PostgreSQL for metadata (docs/replicas.md).

Each replica keeps its spans in its own data directory (no shared span store runs here), so
a rule's data is sent to the replica that should see it. The lease is short (interval 1 s,
lease 3 s) so failover takes seconds; the defaults' bound (25 s) is checked in
tests/alerting/test_config.py. The promised bounds are deadlines: failover < 30 s after the
leader is killed, a revoked key refused by the other replica < 5 s after the revocation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.alerting._receiver import Receiver
from tests.alerting.test_e2e import make_spans
from tests.eventually import eventually
from tests.server._process import ServerProcess
from tests.server.conftest import ADMIN_TOKEN

FAILOVER_S = 30.0  # the promise (docs/replicas.md)
REVOCATION_S = 5.0


def _rule(rule_id: str, service: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "kind": "outcome_ratio",
        "outcomes": ["timeout"],
        "filters": {"service": service, "scope": "requests"},
        "window": "2m",  # evaluated every 2 s; holds the spans for the whole test
        "threshold": "10%",
        "severity": "critical",
        "channels": ["hook"],
    }


def _config(path: Path, meta_url: str, hook_url: str) -> Path:
    alerting = {
        "interval": 1,
        "lease_ttl": 3,
        "starter_rules": False,
        "retry_base": 0.5,
        "retry_max": 1,
        "channels": [{"type": "webhook", "name": "hook", "url": hook_url}],
    }
    config = {"store": {"meta_url": meta_url}, "auth": {"admin_token": ADMIN_TOKEN}}
    path.write_text(yaml.safe_dump({**config, "alerting": alerting}))
    return path


def _call(server: ServerProcess, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, server.url + path, headers=headers, timeout=10, **kw)


def _leads(server: ServerProcess) -> bool:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    found = re.search(r"^watchkeeper_alert_evaluation_leader (\S+)$", text, re.M)
    return found is not None and float(found.group(1)) == 1.0


def _evaluations(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    found = re.search(r'^watchkeeper_alert_evaluations_total\{result="ok"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _send(server: ServerProcess, token: str, service: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
    )
    assert exporter.export(make_spans(50, timeouts=20, service=service)) is SpanExportResult.SUCCESS


def _firing(receiver: Receiver, rule_id: str) -> list[dict[str, Any]]:
    return [b for b in list(receiver.received) if b["rule_id"] == rule_id]


@pytest.fixture
def replicas(tmp_path: Path, postgres: Any, receiver: Receiver) -> Any:
    config = _config(tmp_path / "wk.yaml", postgres.new_database(), receiver.url)
    servers = [
        ServerProcess(tmp_path / name / "data", None, "--config", str(config))
        for name in ("a", "b")
    ]
    for name, server in zip(("a", "b"), servers, strict=True):
        (tmp_path / name).mkdir()
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.slow
def test_two_replicas_share_keys_rules_alerts_and_one_evaluates(
    replicas: list[ServerProcess], receiver: Receiver
) -> None:
    assert eventually(lambda: sum(_leads(s) for s in replicas) == 1, 10, 0.2)
    leader, follower = sorted(replicas, key=_leads, reverse=True)
    assert _leads(leader) and not _leads(follower)

    # A key made on one replica works on the other; revoked on one, the other refuses it.
    made = _call(follower, "POST", "/api/v1/keys", ADMIN_TOKEN, json={"project": "default",
                 "name": "ops", "role": "admin"})  # fmt: skip
    assert made.status_code == 201, made.text
    key = made.json()["token"]
    viewer = _call(leader, "POST", "/api/v1/keys", ADMIN_TOKEN,
                   json={"project": "default", "role": "viewer"}).json()  # fmt: skip
    assert _call(follower, "GET", "/api/v1/rules", viewer["token"]).status_code == 200
    assert _call(leader, "DELETE", f"/api/v1/keys/{viewer['key_id']}", ADMIN_TOKEN).is_success
    refused = eventually(
        lambda: _call(follower, "GET", "/api/v1/rules", viewer["token"]).status_code,
        REVOCATION_S,
        0.1,
        until=lambda status: status == 401,
    )
    assert refused == 401

    # A rule made on the follower is evaluated by the leader, and its alert is seen by both.
    made = _call(follower, "POST", "/api/v1/rules", key, json=_rule("chat-timeouts", "chat"))
    assert made.status_code == 201, made.text
    for server in replicas:
        _send(server, key, "chat")
    assert len(eventually(lambda: _firing(receiver, "chat-timeouts"), 15, 0.1)) == 1

    def follower_alerts() -> list[str]:
        items = _call(follower, "GET", "/api/v1/alerts", key).json()["items"]
        return [a["rule_id"] for a in items if a["status"] == "firing"]

    assert eventually(follower_alerts, 5, 0.1) == ["chat-timeouts"]

    # A rule made on the leader whose data only the follower holds: it fires after failover.
    made = _call(leader, "POST", "/api/v1/rules", key, json=_rule("billing-timeouts", "billing"))
    assert made.status_code == 201, made.text
    _send(follower, key, "billing")

    leader.kill()
    assert eventually(lambda: _leads(follower), FAILOVER_S, 0.1), follower.output()[-3000:]
    billing = eventually(lambda: _firing(receiver, "billing-timeouts"), 15, 0.1)
    assert len(billing) == 1, follower.output()[-3000:]

    # No duplicate: the new leader goes on evaluating both rules (the firing chat alert
    # came with the lease) and notifies nothing more.
    seen = _evaluations(follower)
    assert eventually(lambda: _evaluations(follower) - seen, 20, 0.2, until=lambda n: n >= 4) >= 4
    got = sorted((b["rule_id"], b["status"]) for b in receiver.received)
    assert got == [("billing-timeouts", "firing"), ("chat-timeouts", "firing")]
