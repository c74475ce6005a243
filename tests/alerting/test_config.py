"""The `alerting:` section: durations, ratios, starter rules, and errors that say what to fix."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.alerting import Matcher, load_alerting_config, parse_duration, parse_rule
from watchkeeper.errors import ConfigError, ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), ("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("7d", 604800.0),
     ("250ms", 0.25), ("2w", 1209600.0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["5 minutes", "m5", "", "-3", "1h-2m", True, float("inf"), float("nan"), "1e309",
            "3651d", "99999999999999999999w"],
)  # fmt: skip
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)


def test_starter_rules_load_by_default_and_can_be_overridden_or_dropped() -> None:
    ids = [r.id for r in load_alerting_config({}).rules]
    assert ids == [
        "high-timeout-rate",
        "error-spike",
        "p95-near-deadline",
        "cost-anomaly",
        "hallucination-score-drop",
        "service-down",
        "target-down",
        "disk-filling-up",
        "host-memory-high",
        "postgres-connections-near-max",
        "redis-evictions",
        "redis-memory-near-max",
    ]
    own = {"id": "high-timeout-rate", "kind": "outcome_ratio", "outcomes": ["timeout"],
           "threshold": "25%"}  # fmt: skip
    cfg = load_alerting_config({"rules": [own]})
    [timeouts] = [r for r in cfg.rules if r.id == "high-timeout-rate"]
    assert timeouts.threshold == 0.25 and len(cfg.rules) == 12
    assert load_alerting_config({"starter_rules": False}).rules == ()


def test_rule_shorthands() -> None:
    r = parse_rule({"id": "x", "kind": "count", "for": "2m", "filters": {"service": "chat",
                    "model": ["a", "b"], "scope": "llm"}})  # fmt: skip
    assert r.for_ == 120.0
    assert r.filters.services == ("chat",) and r.filters.models == ("a", "b")
    assert r.filters.scope == "llm"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "x", "kind": "nope"}, "kind"),
        ({"id": "x", "kind": "count", "window": "soon"}, "duration"),
        ({"id": "x", "kind": "score"}, "score_name"),
        ({"id": "x", "kind": "count", "group_by": "user"}, "group_by"),
        ({"id": "x", "kind": "count", "colour": "red"}, "remove it or check its spelling"),
        ({"id": "x", "kind": "outcome_ratio", "outcomes": ["oops"]}, "unknown outcomes"),
        ({"id": "has space", "kind": "count"}, "id"),
        ({"id": "x", "kind": "outcome_ratio", "threshold": "150%"}, "150% is not a share"),
        ({"id": "x", "kind": "outcome_ratio", "threshold": -0.1}, "0% to 100%"),
        ({"id": "x", "kind": "outcome_ratio", "threshold": "nan%"}, "0% to 100%"),
        (
            {
                "id": "x",
                "kind": "score",
                "score_name": "s",
                "score_stat": "pass_rate",
                "threshold": 1.2,
            },
            "is not a share",
        ),
        ({"id": "x", "kind": "latency", "threshold": "inf"}, "finite"),
    ],
)
def test_rule_errors_say_what_to_fix(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_rule(data)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "outcome_ratio", "threshold": "100%"},
        {"kind": "outcome_ratio", "threshold": 0},
        {"kind": "score", "score_name": "s", "score_stat": "low_share", "threshold": "20%"},
        {"kind": "score", "score_name": "s", "threshold": 4.5},  # a mean, not a share
        {"kind": "latency", "threshold": 8000},
        {"kind": "sum", "threshold": 250.0},
    ],
)
def test_thresholds_in_range(data: dict[str, object]) -> None:
    assert parse_rule({"id": "x", **data}).kind == data["kind"]


def test_rules_are_counted_as_written_and_errors_are_one_line() -> None:
    rules = [{"id": "a", "kind": "count"}, {"id": "b", "kind": "oops"}]
    with pytest.raises(ConfigError) as caught:
        load_alerting_config({"rules": rules}, "config file wk.yaml")  # after 6 starter rules
    message = str(caught.value)
    assert message.startswith("config file wk.yaml: alerting.rules.1.kind: ")
    assert "\n" not in message


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"slos\.0\.latency_threshold_ms|latency_threshold_ms"):
        load_alerting_config({"slos": [{"id": "lat", "sli": "latency"}]})
    with pytest.raises(ConfigError, match="share the id"):
        load_alerting_config({"rules": [{"id": "a", "kind": "count"}] * 2})
    with pytest.raises(ConfigError, match="interval"):
        load_alerting_config({"interval": "0.5s"})


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [("service=chat", "service", "=", "chat"), ('model=~"gpt-4.*"', "model", "=~", "gpt-4.*"),
     ("env!=prod", "env", "!=", "prod"), ("severity!~warn.*", "severity", "!~", "warn.*")],
)  # fmt: skip
def test_matchers_from_text(text: str, name: str, op: str, value: str) -> None:
    m = Matcher.model_validate(text)
    assert (m.name, m.op, m.value) == (name, op, value)


def test_bad_regex_matcher() -> None:
    with pytest.raises(ValueError, match="regular expression"):
        Matcher.model_validate("model=~gpt(")


def test_config_silences_take_iso_times() -> None:
    cfg = load_alerting_config(
        {
            "silences": [
                {
                    "matchers": ["service=checkout"],
                    "starts_at": "2026-03-01T02:00:00Z",
                    "ends_at": "2026-03-01T04:00:00+02:00",
                }
            ]
        }
    )
    [s] = cfg.silences
    assert s.starts_at == 1772330400.0 and s.ends_at - s.starts_at == 0.0
    with pytest.raises(ConfigError, match="not a time"):
        load_alerting_config({"silences": [{"matchers": ["a=b"], "ends_at": "tomorrow"}]})


def test_the_documented_example_is_valid() -> None:
    import yaml

    from watchkeeper.alerting import _config

    doc = _config.__doc__ or ""
    example = doc[doc.index("    alerting:") :]
    data = yaml.safe_load("\n".join(line[4:] for line in example.splitlines()))
    env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/x", "PD_KEY": "k"}
    from watchkeeper.alerting.channels import parse_channel_specs

    cfg = load_alerting_config(data["alerting"])
    assert [s.name for s in parse_channel_specs(list(cfg.channels), env)] == ["team", "pager"]
    assert cfg.rules[-1].id == "checkout-timeouts" and cfg.slos[0].objective == 0.99


@pytest.mark.parametrize(
    ("section", "lease", "failover"),
    [
        ({}, 20.0, 25.0),  # the defaults: a dead leader is replaced within 25 s (< 30 s)
        ({"interval": 1}, 4.0, 5.0),
        ({"interval": 1, "lease_ttl": 3}, 3.0, 4.0),  # what tests/server/test_replicas.py runs
        ({"interval": 10, "lease_ttl": "1m"}, 60.0, 70.0),
    ],
)
def test_the_lease_and_the_failover_bound_follow_the_interval(
    section: dict[str, Any], lease: float, failover: float
) -> None:
    config = load_alerting_config({"starter_rules": False, **section})
    assert (config.lease_seconds, config.failover_within) == (lease, failover)


def test_a_lease_shorter_than_two_intervals_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"lease_ttl .* at least twice the interval"):
        load_alerting_config({"interval": 5, "lease_ttl": 9})
