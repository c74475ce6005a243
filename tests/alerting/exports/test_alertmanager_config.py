"""The exported Alertmanager configuration passes `amtool check-config` and routes as meant."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.alerting.channels.conftest import Receiver
from tests.alerting.exports.conftest import run, tool
from tests.eventually import eventually
from watchkeeper.alerting._notification import Notification
from watchkeeper.alerting.channels import build_channel, parse_channel_spec, parse_channel_specs
from watchkeeper.cli._export import alertmanager_files

CHANNELS = [
    {"name": "slack-ops", "type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/x",
     "channel": "#ops"},
    {"name": "pager", "type": "pagerduty", "routing_key": "${PD_KEY}", "severities": ["critical"]},
    {"name": "tg", "type": "telegram", "bot_token": "123:abc", "chat_id": "-100123"},
    {"name": "tg-named", "type": "telegram", "bot_token": "123:abc", "chat_id": "@ops"},
    {"name": "mail", "type": "email", "host": "smtp.example.com", "port": 587,
     "sender": "alerts@example.com", "to": ["a@example.com", "b@example.com"],
     "username": "alerts", "password": "pw", "severities": ["critical", "warning"]},
    {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/wk"},
    {"name": "teams", "type": "teams", "webhook_url": "https://prod.example/workflows/1"},
    {"name": "chat", "type": "google_chat", "webhook_url": "https://chat.googleapis.com/v1/x"},
    {"name": "am", "type": "alertmanager", "url": "http://am:9093"},
]  # fmt: skip


def specs() -> list:  # type: ignore[type-arg]
    return parse_channel_specs(CHANNELS, env={"PD_KEY": "0123456789abcdef0123456789abcdef"})


def amtool_version() -> str:
    out = run(tool("amtool"), "--version")
    match = re.search(r"version (\d+\.\d+)", out)
    assert match, out
    return match.group(1)


def test_amtool_accepts_the_config_for_the_installed_version(tmp_path: Path) -> None:
    version = amtool_version()
    files, skipped = alertmanager_files(specs(), version)
    (tmp_path / "alertmanager.yml").write_text(files["alertmanager.yml"])
    out = run(tool("amtool"), "check-config", tmp_path / "alertmanager.yml")
    assert "SUCCESS" in out
    left_out = {s.rule_id for s in skipped}
    assert {"tg-named", "chat", "am"} <= left_out
    config = yaml.safe_load(files["alertmanager.yml"])
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["pager"]["pagerduty_configs"][0]["routing_key"] == "0123456789abcdef" * 2
    assert receivers["tg"]["telegram_configs"][0]["chat_id"] == -100123
    assert receivers["mail"]["email_configs"][0]["to"] == "a@example.com, b@example.com"
    assert receivers["slack-ops"]["slack_configs"][0]["channel"] == "#ops"


def test_route_tree_by_severity_and_inhibition() -> None:
    files, _ = alertmanager_files(specs(), "0.25")
    config = yaml.safe_load(files["alertmanager.yml"])
    routes = {
        r["matchers"][0]: [c["receiver"] for c in r["routes"]] for r in config["route"]["routes"]
    }
    assert routes['severity="critical"'] == ["slack-ops", "pager", "tg", "mail", "hook"]
    assert routes['severity="warning"'] == ["slack-ops", "tg", "mail", "hook"]
    assert routes['severity="info"'] == ["slack-ops", "tg", "hook"]
    assert all(c["continue"] for r in config["route"]["routes"] for c in r["routes"])
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity=~"warning|info"'],
            "equal": ["alertname", "service"],
        }
    ]


def test_teams_needs_alertmanager_0_28() -> None:
    old, skipped = alertmanager_files(specs(), "0.25")
    receivers = yaml.safe_load(old["alertmanager.yml"])["receivers"]
    assert "teams" not in {r["name"] for r in receivers}
    assert any(s.rule_id == "teams" and "0.28" in s.reason for s in skipped)
    new, _ = alertmanager_files(specs(), "0.28")
    config = yaml.safe_load(new["alertmanager.yml"])
    (teams,) = [r for r in config["receivers"] if r["name"] == "teams"]
    assert teams["msteamsv2_configs"][0]["webhook_url"] == "https://prod.example/workflows/1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(check: Callable[[], Any], limit_s: float = 30.0) -> Any:
    result = eventually(check, limit_s, 0.1)
    assert result, "condition not met in time"
    return result


@pytest.fixture
def routed_alertmanager(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    """A real Alertmanager running our exported config, its webhook receiver local."""
    binary = tool("prometheus-alertmanager")
    receiver = Receiver().start()
    channels = parse_channel_specs(
        [{"name": "hook", "type": "webhook", "url": f"{receiver.url}/am"}], env={}
    )
    files, _ = alertmanager_files(channels, amtool_version())
    config = yaml.safe_load(files["alertmanager.yml"])
    for node in [config["route"], *config["route"]["routes"]]:
        node.update(group_wait="0s", group_interval="1s")  # deliver at once in a test
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'd'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _status(f"{url}/-/ready") == 200)
        yield url, receiver
    finally:
        proc.terminate()
        proc.wait(10)
        receiver.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return 0


async def test_real_alertmanager_routes_by_severity_and_inhibits_the_warning(
    routed_alertmanager: tuple[str, Receiver],
) -> None:
    url, receiver = routed_alertmanager
    channel = build_channel(parse_channel_spec({"name": "am", "type": "alertmanager", "url": url}))
    base: dict[str, Any] = {
        "rule_id": "r",
        "rule_name": "Chat errors",
        "status": "firing",
        "summary": "chat fails",
        "labels": {"service": "chat"},
        "started_at": time.time(),
    }

    def delivered() -> list[dict[str, Any]]:
        return [a for r in list(receiver.requests) for a in r.json()["alerts"]]

    await channel.send(Notification(severity="critical", fingerprint="f-crit", **base))
    (sent,) = _until(delivered)  # the critical is active before the warning arrives
    assert sent["labels"]["severity"] == "critical"
    assert sent["labels"]["watchkeeper_fingerprint"] == "f-crit"
    await channel.send(Notification(severity="warning", fingerprint="f-warn", **base))

    def warning_state() -> dict[str, Any] | None:
        alerts = httpx.get(f"{url}/api/v2/alerts", timeout=2).json()
        warn = [a for a in alerts if a["labels"]["severity"] == "warning"]
        return warn[0]["status"] if warn and warn[0]["status"]["inhibitedBy"] else None

    status = _until(warning_state)
    assert status["state"] == "suppressed"
    assert all(a["labels"]["severity"] == "critical" for a in delivered())
