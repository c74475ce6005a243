"""`evaluate(rule, data, now)` over hand-made store results, one table per rule kind."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.alerting import RuleData, evaluate, parse_rule
from watchkeeper.alerting._evaluate import Window, alert_labels, display_value, fingerprint
from watchkeeper.store._protocol import ScoreSummary, Summary

NOW = 1_800_000_000.0


def rule(**kw: Any) -> Any:
    return parse_rule({"id": "r", **kw})


def verdicts(r: Any, data: RuleData) -> list[tuple[str | None, float | None, bool]]:
    d = evaluate(r, data, NOW)
    return [
        (o.key, None if o.value is None else round(o.value, 4), o.breaching) for o in d.observations
    ]


def test_outcome_ratio_per_group_with_min_count() -> None:
    r = rule(kind="outcome_ratio", outcomes=["timeout"], threshold="10%", group_by="service",
             min_count=10)  # fmt: skip
    data = RuleData(
        groups={
            "chat": Summary(count=100, timeouts=30),
            "search": Summary(count=100, timeouts=10),
            "tiny": Summary(count=5, timeouts=5),
        }
    )
    assert verdicts(r, data) == [("chat", 0.3, True), ("search", 0.1, False), ("tiny", None, False)]


def test_outcome_ratio_counts_several_outcomes() -> None:
    r = rule(kind="outcome_ratio", outcomes=["error", "timeout"], threshold=0.2)
    data = RuleData(groups={None: Summary(count=10, errors=1, timeouts=2)})
    assert verdicts(r, data) == [(None, 0.3, True)]


def test_ungrouped_rule_without_spans_gets_one_quiet_verdict() -> None:
    r = rule(kind="outcome_ratio", threshold=0.1)
    assert verdicts(r, RuleData()) == [(None, None, False)]


@pytest.mark.parametrize(
    ("statistic", "comparison", "threshold", "expected"),
    [("p95", ">", 6500, True), ("p99", ">", 9000, False), ("avg", "<", 1000, False),
     ("max", ">=", 12000, True)],
)  # fmt: skip
def test_latency(statistic: str, comparison: str, threshold: float, expected: bool) -> None:
    r = rule(kind="latency", statistic=statistic, comparison=comparison, threshold=threshold)
    s = Summary(count=50, p95_ms=7000.0, p99_ms=8500.0, avg_ms=2000.0, max_ms=12000.0)
    assert verdicts(r, RuleData(groups={None: s}))[0][2] is expected


def test_sum_and_count() -> None:
    s = Summary(count=7, cost_usd=12.5, input_tokens=1000, output_tokens=500)
    assert verdicts(
        rule(kind="sum", field="cost_usd", threshold=10), RuleData(groups={None: s})
    ) == [(None, 12.5, True)]
    tokens = rule(kind="sum", field="total_tokens", threshold=2000)
    assert verdicts(tokens, RuleData(groups={None: s})) == [(None, 1500.0, False)]
    count = rule(kind="count", threshold=5, comparison=">=")
    assert verdicts(count, RuleData(groups={None: s})) == [(None, 7.0, True)]


def test_score_average_below_threshold() -> None:
    r = rule(kind="score", score_name="hallucination", comparison="<", threshold=0.7, min_count=3)
    low = [ScoreSummary("hallucination", 10, 0.55, 0.4, 0.6), ScoreSummary("other", 9, 0.1, 0, 1)]
    assert verdicts(r, RuleData(scores=low)) == [(None, 0.55, True)]
    few = [ScoreSummary("hallucination", 2, 0.1, 0.0, 1.0)]
    assert verdicts(r, RuleData(scores=few)) == [(None, None, False)]


def test_feedback_given_as_labels_uses_the_failing_share() -> None:
    r = rule(kind="score", score_name="user_feedback", score_stat="low_share", threshold="20%")
    thumbs = [ScoreSummary("user_feedback", 50, None, 0.7, 0.3)]
    assert verdicts(r, RuleData(scores=thumbs)) == [(None, 0.3, True)]
    assert display_value(r, 0.3) == (30.0, "%")


def test_absence_per_service() -> None:
    r = rule(kind="absence", group_by="service", window="10m", lookback="24h")
    ns = 1_000_000_000
    data = RuleData(
        groups={
            "alive": Summary(count=5, last_ns=int((NOW - 30) * ns)),
            "gone": Summary(count=5, last_ns=int((NOW - 3600) * ns)),
        }
    )
    assert verdicts(r, data) == [("alive", 30.0, False), ("gone", 3600.0, True)]
    quiet = rule(kind="absence", window="10m")
    assert verdicts(quiet, RuleData(groups={None: Summary()})) == [(None, 86400.0, True)]


def test_anomaly_against_median_of_same_hour() -> None:
    r = rule(kind="anomaly", metric="cost_usd", factor=1.5, min_value=1.0)
    now = RuleData(groups={None: Summary(count=10, cost_usd=16.0)}, baseline=[10, 9, 11, 10, 50])
    [o] = evaluate(r, now, NOW).observations
    assert (o.value, o.threshold, o.breaching) == (16.0, 15.0, True)
    calm = RuleData(groups={None: Summary(count=10, cost_usd=14.0)}, baseline=[10, 9, 11, 10, 50])
    assert not evaluate(r, calm, NOW).observations[0].breaching
    cheap = RuleData(groups={None: Summary(count=1, cost_usd=0.5)}, baseline=[0.1, 0.1, 0.1])
    assert not evaluate(r, cheap, NOW).observations[0].breaching  # under min_value
    young = RuleData(groups={None: Summary(count=1, cost_usd=50)}, baseline=[1.0, 1.0])
    assert not evaluate(r, young, NOW).observations[0].breaching  # too little history


def test_burn_rate_needs_both_windows() -> None:
    r = rule(kind="burn_rate", slo="avail", window="1h", short_window="5m", factor=14.4,
             threshold=14.4, min_count=10)  # fmt: skip
    both = RuleData(burn=(Window(1000, 200), Window(100, 30)), objective=0.99)
    [o] = evaluate(r, both, NOW).observations
    assert o.breaching and o.value == pytest.approx(20.0)
    recovered = RuleData(burn=(Window(1000, 200), Window(100, 1)), objective=0.99)
    assert not evaluate(r, recovered, NOW).observations[0].breaching


def test_groups_are_bounded() -> None:
    r = rule(kind="count", threshold=0, group_by="model", max_groups=3)
    data = RuleData(groups={f"m{i}": Summary(count=1) for i in range(10)})
    assert len(evaluate(r, data, NOW).observations) == 3


def test_labels_and_fingerprints() -> None:
    r = rule(kind="count", group_by="service", labels={"team": "ai"}, severity="critical",
             filters={"service": "chat"})  # fmt: skip
    labels = alert_labels(r, {"service": "chat"})
    assert labels == {"alertname": "r", "rule": "r", "severity": "critical", "service": "chat",
                      "team": "ai"}  # fmt: skip
    assert fingerprint("r", {"service": "a"}) != fingerprint("r", {"service": "b"})
    assert fingerprint("r", {"service": "a"}) == fingerprint("r", {"service": "a"})
    assert fingerprint("r", {}, "acme") != fingerprint("r", {}, "default")
