"""`promtool check rules` and `promtool test rules` on the exported files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.alerting.exports._inputs import (
    ALL_RULES,
    AVAILABILITY,
    ERROR_SPIKE,
    LATENCY,
    SPEND_ANOMALY,
)
from tests.alerting.exports.conftest import run, tool
from watchkeeper.cli._export import prometheus_rules_files


def write(files: dict[str, str], where: Path) -> list[Path]:
    paths = []
    for name, text in files.items():
        (where / name).write_text(text)
        paths.append(where / name)
    return paths


def test_exported_rules_pass_promtool_check(tmp_path: Path) -> None:
    files, skipped = prometheus_rules_files(ALL_RULES, [AVAILABILITY, LATENCY])
    assert skipped == []
    out = run(tool("promtool"), "check", "rules", *write(files, tmp_path))
    assert "SUCCESS: 8 rules found" in out  # the alert rules
    assert "SUCCESS: 34 rules found" in out  # 2 SLOs × (8 SLI + 7 meta + 2 alerts)


@pytest.mark.slow
def test_promtool_unit_test_fires_the_error_ratio_and_the_slo_page(tmp_path: Path) -> None:
    files, _ = prometheus_rules_files([ERROR_SPIKE], [AVAILABILITY])
    write(files, tmp_path)
    chat = 'project="default",service="chat",operation="llm"'
    unit = {
        "rule_files": list(files),
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # 90 good and 10 failed spans a minute: a 10% error ratio
                    {
                        "series": f'watchkeeper_spans_total{{{chat},outcome="success"}}',
                        "values": "0+90x120",
                    },
                    {
                        "series": f'watchkeeper_spans_total{{{chat},outcome="error"}}',
                        "values": "0+10x120",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "Error spike", "exp_alerts": []},  # pending
                    {
                        "eval_time": "10m",
                        "alertname": "Error spike",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "rule": "error-spike",
                                    "project": "default",
                                    "service": "chat",
                                },
                                "exp_annotations": {
                                    "summary": "chat: 10% of requests failed over 5m",
                                    "title": "Error spike",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "70m",
                        "alertname": "ChatAvailabilityErrorBudgetBurn",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "sloth_severity": "page",
                                    "slo": "chat-availability",
                                    "sloth_id": "chat-chat-availability",
                                    "sloth_service": "chat",
                                    "sloth_slo": "chat-availability",
                                },
                                "exp_annotations": {
                                    "summary": "Chat availability: the error budget is burning"
                                    " too fast",
                                    "title": "(page) chat chat-availability SLO error budget"
                                    " burn rate is too fast.",
                                },
                            },
                            {  # 10% errors burn the 1% budget 10× too fast: ticket too
                                "exp_labels": {
                                    "severity": "warning",
                                    "sloth_severity": "ticket",
                                    "slo": "chat-availability",
                                    "sloth_id": "chat-chat-availability",
                                    "sloth_service": "chat",
                                    "sloth_slo": "chat-availability",
                                },
                                "exp_annotations": {
                                    "summary": "Chat availability: the error budget is burning"
                                    " too fast",
                                    "title": "(ticket) chat chat-availability SLO error budget"
                                    " burn rate is too fast.",
                                },
                            },
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "unit.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    out = run(tool("promtool"), "test", "rules", "unit.yml", cwd=tmp_path)
    assert "SUCCESS" in out


@pytest.mark.slow
def test_promtool_unit_test_fires_the_spend_anomaly(tmp_path: Path) -> None:
    files, _ = prometheus_rules_files([SPEND_ANOMALY], [])
    write(files, tmp_path)
    spend = {"project": "default", "service": "chat", "model": "gpt-4o"}
    expected = {
        "exp_labels": {"severity": "warning", "rule": "spend-anomaly", "project": "default"},
        "exp_annotations": {
            "summary": "Spend above the usual: 5.00 USD",
            "title": "Spend above the usual",
        },
    }
    unit = {
        "rule_files": ["watchkeeper-rules.yml"],
        "evaluation_interval": "1h",
        "tests": [
            {
                "interval": "1h",
                # 1 USD an hour for a week, then 5 USD an hour
                "input_series": [
                    {
                        "series": "watchkeeper_cost_usd_total"
                        + "{" + ",".join(f'{k}="{v}"' for k, v in spend.items()) + "}",
                        "values": "0+1x168 173+5x5",
                    }
                ],
                "alert_rule_test": [
                    {"eval_time": "160h", "alertname": "Spend above the usual", "exp_alerts": []},
                    {"eval_time": "171h", "alertname": "Spend above the usual",
                     "exp_alerts": [expected]},
                ],
            }
        ],
    }  # fmt: skip
    (tmp_path / "unit.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    assert "SUCCESS" in run(tool("promtool"), "test", "rules", "unit.yml", cwd=tmp_path)
