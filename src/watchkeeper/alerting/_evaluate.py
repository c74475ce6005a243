"""Evaluating a rule is a pure function of the rule, what the store returned, and the time.

`evaluate(rule, data, now) -> Decision`: one `Observation` per group (or one without
`group_by`), each saying the observed value, the threshold it was compared with, and whether
it breaches. Too little data to judge gives `value=None` and never breaches.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from watchkeeper.alerting._model import Comparison, Rule
from watchkeeper.store import ScoreSummary, Summary

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_OUTCOME_FIELD = {
    "success": "success",
    "error": "errors",
    "timeout": "timeouts",
    "fallback": "fallbacks",
    "rejected": "rejected",
}


@dataclass(frozen=True, slots=True)
class Window:
    """Counts of one SLO window: all requests and the bad ones."""

    total: int
    bad: int


@dataclass(frozen=True, slots=True)
class RuleData:
    """What the store returned for one rule's query."""

    groups: Mapping[str | None, Summary] = field(default_factory=dict)
    scores: Sequence[ScoreSummary] = ()
    baseline: Sequence[float] = ()  # anomaly: the same window on each previous day
    burn: tuple[Window, Window] | None = None  # burn_rate: (long, short)
    objective: float | None = None  # burn_rate: the SLO objective
    series: Sequence[tuple[Mapping[str, str], float]] = ()  # promql: the result's series
    log_counts: tuple[int, int] = (0, 0)  # log rules: records matching, all (of a ratio)


@dataclass(frozen=True, slots=True)
class Observation:
    """The verdict for one group of a rule."""

    key: str | None
    labels: Mapping[str, str]  # the group's labels ({} without group_by)
    value: float | None
    threshold: float | None
    breaching: bool
    count: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdicts of one evaluation of a rule."""

    rule_id: str
    at: float
    observations: tuple[Observation, ...]


def compare(value: float, comparison: Comparison, threshold: float) -> bool:
    """`value <comparison> threshold`."""
    return _COMPARE[comparison](value, threshold)


def bad_count(summary: Summary, outcomes: Sequence[str]) -> int:
    """Spans of the summary whose outcome is one of `outcomes`."""
    return sum(int(getattr(summary, _OUTCOME_FIELD[o])) for o in outcomes)


def metric_value(summary: Summary, metric: str) -> float | None:
    """A named number of a summary (cost_usd, count, errors, total_tokens, p95, ...)."""
    if metric == "total_tokens":
        return float(summary.input_tokens + summary.output_tokens)
    if metric in ("p50", "p90", "p95", "p99", "avg", "max"):
        value = getattr(summary, f"{metric}_ms")
        return None if value is None else float(value)
    return float(getattr(summary, metric))


def threshold_observation(
    rule: Rule, key: str | None, value: float | None, count: int
) -> Observation:
    """The verdict on one group's value: it breaches when `value <comparison> threshold`."""
    breaching = value is not None and compare(value, rule.comparison, rule.threshold)
    return Observation(key, group_labels(rule, key), value, rule.threshold, breaching, count)


def group_labels(rule: Rule, key: str | None) -> dict[str, str]:
    """Labels naming a group: `{group_by: key}`, or {} for an ungrouped rule."""
    if rule.group_by is None:
        return {}
    return {rule.group_by: "" if key is None else key}


def groups_of(rule: Rule, data: RuleData) -> Mapping[str | None, Summary]:
    """The summaries to judge; an ungrouped rule over no spans still gets one verdict (count
    0), so it can resolve."""
    if rule.group_by is None and not data.groups:
        return {None: Summary()}
    return data.groups


def burn_rate(window: Window, objective: float) -> float | None:
    """How many times faster than allowed the window spends the error budget."""
    if window.total == 0:
        return None
    return (window.bad / window.total) / (1.0 - objective)


def evaluate(rule: Rule, data: RuleData, now: float) -> Decision:
    """Judge one rule on the data the store returned for it at `now` (unix seconds)."""
    obs = rule.observe(data, now)
    obs.sort(key=lambda o: "" if o.key is None else o.key)
    return Decision(rule.id, now, tuple(obs[: rule.max_groups]))


def alert_labels(rule: Rule, group: Mapping[str, str]) -> dict[str, str]:
    """Every label of one alert: rule name, severity, the rule's labels and the group's."""
    labels = {"alertname": rule.title, "rule": rule.id, "severity": rule.severity}
    if len(rule.filters.services) == 1:
        labels["service"] = rule.filters.services[0]
    labels.update(rule.labels)
    labels.update(group)
    return labels


def fingerprint(rule_id: str, group: Mapping[str, str], project: str = "default") -> str:
    """Stable id of one alert: the project, the rule and its group labels."""
    parts = [project, rule_id, *(f"{k}={v}" for k, v in sorted(group.items()))]
    text = "\x00".join(parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def display_value(rule: Rule, value: float | None) -> tuple[float | None, str]:
    """The value as people read it, with its unit (ratios as percent)."""
    if value is None:
        return None, ""
    unit = rule.unit()
    return (value * 100.0 if unit == "%" else value), unit
