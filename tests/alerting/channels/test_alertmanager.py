"""Alertmanager channel: the API v2 body, and the real Alertmanager routing it to a webhook."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver
from tests.eventually import eventually
from watchkeeper.alerting.channels import AlertmanagerChannel, AlertmanagerSpec

NOW = 1_763_900_100.0
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


async def test_body_and_auth(receiver: Receiver, http: httpx.AsyncClient) -> None:
    spec = AlertmanagerSpec.model_validate(
        {
            "name": "am",
            "url": receiver.url + "/",
            "username": "wk",
            "password": "pw",
            "extra_labels": {"team": "ai"},
        }
    )
    channel = AlertmanagerChannel(spec, http, clock=lambda: NOW)
    await channel.send(notification(labels={"service": "chat-api", "gen_ai.system": "openai"}))
    await channel.send(resolved())
    firing, done = receiver.requests
    assert firing.path == "/api/v2/alerts"
    assert firing.headers["authorization"] == "Basic d2s6cHc="
    (alert,) = firing.json()
    assert alert["labels"] == {
        "alertname": "Chat p95 latency",
        "severity": "critical",
        "service": "chat-api",
        "gen_ai_system": "openai",
        "team": "ai",
        "watchkeeper_rule_id": "r-latency",
        "watchkeeper_fingerprint": "fp0123456789abcdef",
    }
    notes = alert["annotations"]
    assert notes["summary"] == "p95 latency of chat-api is above 2 s"
    assert notes["value"] == "2875 ms" and notes["threshold"] == "> 2000 ms"
    assert notes["window"] == "5m"
    assert notes["runbook_url"] == "https://runbooks.example/latency"
    assert notes["example_traces"].count("http://wk.example/traces/") == 5
    assert alert["startsAt"] == "2025-11-23T12:13:20.000Z"
    assert alert["endsAt"] == "2025-11-24T12:15:00.000Z"  # now + 24 h: outlives resolve_timeout
    assert alert["generatorURL"] == "http://wk.example/alerts/r-latency"
    (ended,) = done.json()
    assert ended["endsAt"] == "2025-11-23T12:23:20.000Z"


@pytest.mark.parametrize(
    ("auth", "error"),
    [
        ({"url": "http://wk:pw@am:9093", "bearer_token": "t"}, "a user in the url and bearer"),
        ({"username": "wk", "password": "pw", "bearer_token": "t"}, "username/password and"),
        ({"url": "http://wk:pw@am:9093", "username": "wk"}, "a user in the url and username"),
        ({"password": "pw"}, "password without username"),
    ],
)
def test_one_credential_at_most(auth: dict[str, str], error: str) -> None:
    """Two credentials are refused, not one of them dropped (httpx sent the URL's user and
    dropped the bearer token); Prometheus's own config refuses them too."""
    with pytest.raises(pydantic.ValidationError, match=error):
        AlertmanagerSpec.model_validate({"name": "am", "url": "http://am:9093", **auth})
    for one in ({"url": "http://wk:pw@am:9093"}, {"bearer_token": "t"}, {"username": "wk"}):
        AlertmanagerSpec.model_validate({"name": "am", "url": "http://am:9093", **one})


async def test_firing_ttl_sets_ends_at_ahead(receiver: Receiver, http: httpx.AsyncClient) -> None:
    spec = AlertmanagerSpec(name="am", url=receiver.url, firing_ttl_s=900, bearer_token="tok")  # type: ignore[arg-type]
    await AlertmanagerChannel(spec, http, clock=lambda: NOW).send(notification())
    req = receiver.requests[0]
    assert req.headers["authorization"] == "Bearer tok"
    assert req.json()[0]["endsAt"] == "2025-11-23T12:30:00.000Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[str]:
    """A real Alertmanager that forwards everything to `receiver` at once."""
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed")
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {receiver.url}/am
        send_resolved: true
"""
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: _ready(url), 30, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(check: Any, limit_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    def met() -> bool:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited: {proc.stderr.read() if proc.stderr else ''!r}")
        return bool(check())

    assert eventually(met, limit_s, 0.1), "condition not met in time"


def _webhook_alerts(receiver: Receiver, status: str) -> list[dict[str, Any]]:
    out = []
    for req in list(receiver.requests):
        if req.path == "/am":
            out.extend(a for a in req.json()["alerts"] if a["status"] == status)
    return out


@pytest.mark.slow
async def test_real_alertmanager_routes_trigger_and_resolve(
    alertmanager: str, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    spec = AlertmanagerSpec(name="am", url=alertmanager)
    channel = AlertmanagerChannel(spec, http)
    now = time.time()
    await channel.send(notification(started_at=now - 60))
    _wait_until(lambda: _webhook_alerts(receiver, "firing"), 30)
    (fired,) = _webhook_alerts(receiver, "firing")
    assert fired["labels"]["alertname"] == "Chat p95 latency"
    assert fired["labels"]["watchkeeper_fingerprint"] == "fp0123456789abcdef"
    assert fired["annotations"]["value"] == "2875 ms"
    assert fired["generatorURL"] == "http://wk.example/alerts/r-latency"

    await channel.send(resolved(started_at=now - 60, ended_at=time.time()))
    _wait_until(lambda: _webhook_alerts(receiver, "resolved"), 30)
    (done,) = _webhook_alerts(receiver, "resolved")
    assert done["labels"] == fired["labels"]
    assert done["endsAt"] != "0001-01-01T00:00:00Z"


async def test_without_ttl_resolve_timeout_decides(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    spec = AlertmanagerSpec(name="am", url=receiver.url, firing_ttl_s=None)
    await AlertmanagerChannel(spec, http, clock=lambda: NOW).send(notification())
    assert "endsAt" not in receiver.requests[0].json()[0]
