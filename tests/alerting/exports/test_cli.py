"""`watchkeeper export ...` from a config file, as the CLI runs it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from watchkeeper.alerting._config import load_starter_rules
from watchkeeper.cli import main as cli_main
from watchkeeper.cli._export import export_main

CONFIG = """
alerting:
  starter_rules: false
  rules:
    - id: error-spike
      name: Error spike
      kind: outcome_ratio
      group_by: service
      window: 5m
      threshold: 5%
      for: 2m
      channels: [pager]
    - id: hallucination
      kind: score
      score_name: hallucination
      threshold: 0.7
      comparison: "<"
  slos:
    - id: chat-availability
      filters: {service: chat}
      objective: 99.5%
  channels:
    - {name: pager, type: pagerduty, routing_key: "${PD_KEY}", severities: [critical]}
    - {name: ops, type: slack, webhook_url: "https://hooks.slack.com/services/T/B/x"}
  routes:
    - matchers: ['service=~"chat|search"']
      channels: [ops]
      continue: true
  default_channels: [ops]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(CONFIG)
    return path


def test_prometheus_rules_are_written_and_what_is_left_out_is_said(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert export_main(["prometheus-rules", "--config", str(config), "--out", str(out)]) == 0
    rules = (out / "watchkeeper-rules.yml").read_text()
    assert "alert: Error spike" in rules
    assert "# Not exported: hallucination: evaluation scores" in rules
    assert "record: slo:objective:ratio" in (out / "watchkeeper-slos.yml").read_text()
    err = capsys.readouterr().err
    assert "not exported: hallucination" in err


def test_alertmanager_config_reads_secrets_from_the_environment(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"PD_KEY": "k" * 32}
    assert export_main(["alertmanager-config", "--config", str(config)], env=env) == 0
    text = capsys.readouterr().out
    assert "routing_key: " + "k" * 32 in text
    assert export_main(["alertmanager-config", "--config", str(config)], env={}) == 2
    assert "environment variable PD_KEY is not set" in capsys.readouterr().err


def test_the_watchkeeper_command_runs_the_export(tmp_path: Path) -> None:
    assert cli_main(["export", "grafana", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "dashboards" / "watchkeeper-cost.json").is_file()
    assert (tmp_path / "provisioning" / "datasources" / "watchkeeper.yaml").is_file()


def test_alertmanager_routes_follow_the_engines_policy(config: Path, tmp_path: Path) -> None:
    env = {"PD_KEY": "k" * 32}
    out = tmp_path / "am"
    assert export_main(["alertmanager-config", "--config", str(config), "--out", str(out),
                        "--alertmanager-version", "0.25"], env=env) == 0  # fmt: skip
    route = yaml.safe_load((out / "alertmanager.yml").read_text())["route"]
    own, configured, *by_severity = route["routes"]
    assert own["matchers"] == ['rule="error-spike"'] and own["continue"] is False
    assert [r["receiver"] for r in own["routes"]] == ["pager"]
    assert configured["matchers"] == ['service=~"chat|search"'] and configured["continue"]
    assert [r["receiver"] for r in configured["routes"]] == ["ops"]
    # default_channels: only 'ops' receives what nothing else routed
    assert {r["receiver"] for node in by_severity for r in node["routes"]} == {"ops"}
    amtool = shutil.which("amtool")
    if amtool is not None:
        check = subprocess.run([amtool, "check-config", str(out / "alertmanager.yml")],
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr


def test_the_shipped_starter_rules_export_and_pass_promtool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("alerting: {}\n")
    out = tmp_path / "rules"
    assert export_main(["prometheus-rules", "--config", str(empty), "--out", str(out)]) == 0
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    check = subprocess.run(
        [promtool, "check", "rules", str(out / "watchkeeper-rules.yml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    exported = yaml.safe_load((out / "watchkeeper-rules.yml").read_text())["groups"][0]["rules"]
    skipped = [line for line in capsys.readouterr().err.splitlines() if "not exported" in line]
    # every starter rule is either exported or named as left out
    assert len(exported) + len(skipped) == len(load_starter_rules())
    assert all("scores are not exposed" in line for line in skipped)
    # starter rules hold for every project ("*"): no literal project matcher may remain
    assert not any('project="*"' in r["expr"] for r in exported)
