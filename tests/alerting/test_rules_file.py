"""Prometheus rules files (`groups:`) loaded as they are: alerts become promql rules,
recording rules are listed with the reason, and what Prometheus refuses is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.alerting.exports.conftest import run, tool
from watchkeeper.alerting import load_alerting_config, load_rules_file
from watchkeeper.alerting.exports import render_alert_rules
from watchkeeper.errors import ConfigError, ValidationError

NODE_RULES = """
groups:
  - name: node
    interval: 30s
    limit: 50
    labels: {team: infra}
    rules:
      - record: instance:node_cpu:ratio
        expr: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))
      - alert: HostOutOfMemory
        expr: node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.1
        for: 2m
        keep_firing_for: 1m
        labels: {severity: critical}
        annotations:
          summary: "Host out of memory ({{ $labels.instance }})"
          description: "Memory left {{ $value | humanizePercentage }}"
      - alert: HostHighCpu
        expr: instance:node_cpu:ratio > 0.9
        labels: {severity: page}
  - name: disk
    rules:
      - alert: HostOutOfMemory
        expr: up == 0
"""


def test_alerts_become_promql_rules() -> None:
    loaded = load_rules_file(NODE_RULES, "shop")
    memory, cpu, again = loaded.rules
    assert memory.id == "node.HostOutOfMemory" and again.id == "disk.HostOutOfMemory"
    assert memory.title == "HostOutOfMemory" and memory.kind == "promql"
    assert memory.project == "shop" and memory.severity == "critical"
    assert memory.for_ == 120 and memory.keep_firing_for == 60
    assert memory.evaluate_every == 30 and memory.max_groups == 50
    assert memory.labels == {"team": "infra", "severity": "critical"}
    assert memory.annotations["description"] == "Memory left {{ $value | humanizePercentage }}"
    # An unknown severity stays a label; the rule keeps the default severity.
    assert cpu.labels["severity"] == "page" and cpu.severity == "warning"
    reasons = dict(loaded.skipped)
    assert "not evaluated" in reasons["instance:node_cpu:ratio"]
    assert "instance:node_cpu:ratio" in reasons["HostHighCpu"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [{name: g, rules: [{alert: A, expr: 'up =='}]}]",
         "group 'g', rule 1 (A): expr: 1:6: parse error: unexpected end of input"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, sev: x}]}]", "unknown key 'sev'"),
        ("groups: [{name: g, rules: [{alert: A, record: b, expr: up}]}]", "either alert or record"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, for: soon}]}]", "not a duration"),
        ("groups: [{name: g}, {name: g}]", "two groups share this name"),
        ("groups: [{rules: []}]", "group 1 needs a name"),
        ("groups: [{name: g, rules: [{alert: 'a b', expr: up}]}]", "invalid alert name"),
        ("rules: []", "a list of groups"),
        ("groups: [{name: g, rules: [{alert: A, expr: up}]", "not valid YAML"),
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
         "aliases are expanded"),
    ],
)  # fmt: skip
def test_what_prometheus_refuses_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_rules_file(text)
    assert message in str(caught.value)


def test_config_loads_rule_files_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "node.yml").write_text(NODE_RULES)
    cfg = load_alerting_config(
        {"starter_rules": False, "rule_files": ["rules/*.yml"]}, "config file x", tmp_path
    )
    assert [r.id for r in cfg.rules] == [
        "node.HostOutOfMemory", "node.HostHighCpu", "disk.HostOutOfMemory"]  # fmt: skip
    (tmp_path / "bad.yml").write_text("groups: [{name: g, rules: [{alert: A, expr: 'up{'}]}]")
    with pytest.raises(ConfigError) as caught:
        load_alerting_config({"rule_files": [{"path": "bad.yml"}]}, "config file x", tmp_path)
    assert "bad.yml: group 'g', rule 1 (A): expr: 1:4: parse error" in str(caught.value)


def test_promql_rules_export_as_they_are(tmp_path: Path) -> None:
    """Loaded, exported, and checked by promtool: the same rules come out."""
    promtool = tool("promtool")
    rules = load_rules_file(NODE_RULES).rules
    exported = render_alert_rules(rules).document
    [entry, *_] = exported["groups"][0]["rules"]
    assert entry["alert"] == "HostOutOfMemory"
    assert entry["expr"] == "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.1"
    assert entry["annotations"]["summary"] == "Host out of memory ({{ $labels.instance }})"
    assert entry["for"] == "2m" and entry["keep_firing_for"] == "1m"
    (tmp_path / "out.yml").write_text(yaml.safe_dump(exported))
    assert "SUCCESS" in run(promtool, "check", "rules", tmp_path / "out.yml")
