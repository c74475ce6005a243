"""The exported Alertmanager configuration passes `amtool check-config` and routes as meant."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.alerting.exports.conftest import run, tool
from watchkeeper.alerting.channels import parse_channel_specs
from watchkeeper.alerting.exports import alertmanager_files

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
            "target_matchers": ['severity="warning"'],
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
