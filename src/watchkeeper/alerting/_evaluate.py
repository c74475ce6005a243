"""Evaluating a rule is a pure function of the rule, what the store returned, and the time.

`evaluate(rule, data, now) -> Decision`: one `Observation` per group (or one without
`group_by`), each saying the observed value, the threshold it was compared with, and whether
it breaches. Too little data to judge gives `value=None` and never breaches.
"""

from __future__ import annotations

import hashlib
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from watchkeeper.alerting._config import Comparison, Rule
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


def summary_value(rule: Rule, s: Summary) -> float | None:
    """The value a span rule observes on one summary; None when too few spans to judge."""
    judged = s.count >= max(rule.min_count, 1)
    if rule.kind == "outcome_ratio":
        return bad_count(s, rule.outcomes) / s.count if judged else None
    if rule.kind == "latency":
        return metric_value(s, rule.statistic) if judged else None
    if rule.kind == "sum":
        return metric_value(s, rule.field)
    if rule.kind == "count":
        return float(s.count)
    raise ValueError(f"rule kind {rule.kind} does not read a summary")


def _threshold_obs(rule: Rule, key: str | None, value: float | None, count: int) -> Observation:
    breaching = value is not None and compare(value, rule.comparison, rule.threshold)
    return Observation(key, group_labels(rule, key), value, rule.threshold, breaching, count)


def group_labels(rule: Rule, key: str | None) -> dict[str, str]:
    """Labels naming a group: `{group_by: key}`, or {} for an ungrouped rule."""
    if rule.group_by is None:
        return {}
    return {rule.group_by: "" if key is None else key}


def _groups(rule: Rule, data: RuleData) -> Mapping[str | None, Summary]:
    # An ungrouped rule over no spans still gets one verdict (count 0), so it can resolve.
    if rule.group_by is None and not data.groups:
        return {None: Summary()}
    return data.groups


def _absence(rule: Rule, data: RuleData, now: float) -> list[Observation]:
    out = []
    for key, s in _groups(rule, data).items():
        silent = rule.lookback if not s.count or s.last_ns is None else now - s.last_ns / 1e9
        silent = max(0.0, silent)
        breaching = silent >= rule.window
        labels = group_labels(rule, key)
        out.append(Observation(key, labels, silent, rule.window, breaching, s.count))
    return out


def _score(rule: Rule, data: RuleData) -> list[Observation]:
    found = next((s for s in data.scores if s.name == rule.score_name), None)
    count = 0 if found is None else found.count
    value = None
    if found is not None and count >= max(rule.min_count, 1):
        value = getattr(found, rule.score_stat)
    return [_threshold_obs(rule, None, value, count)]


def _anomaly(rule: Rule, data: RuleData) -> list[Observation]:
    s = data.groups.get(None, Summary())
    value = metric_value(s, rule.metric)
    points = [b for b in data.baseline if b is not None]
    if value is None or len(points) < 3:  # a median of fewer days says little
        return [Observation(None, {}, value, None, False, s.count)]
    threshold = rule.factor * statistics.median(points)
    breaching = value > threshold and value >= rule.min_value
    return [Observation(None, {}, value, threshold, breaching, s.count)]


def burn_rate(window: Window, objective: float) -> float | None:
    """How many times faster than allowed the window spends the error budget."""
    if window.total == 0:
        return None
    return (window.bad / window.total) / (1.0 - objective)


def _burn(rule: Rule, data: RuleData) -> list[Observation]:
    if data.burn is None or data.objective is None:
        return [Observation(None, {}, None, rule.factor, False)]
    long, short = data.burn
    fast, slow = burn_rate(long, data.objective), burn_rate(short, data.objective)
    enough = short.total >= max(rule.min_count, 1)
    breaching = enough and fast is not None and slow is not None and min(fast, slow) > rule.factor
    return [Observation(None, {}, fast, rule.factor, breaching, long.total)]


def evaluate(rule: Rule, data: RuleData, now: float) -> Decision:
    """Judge one rule on the data the store returned for it at `now` (unix seconds)."""
    if rule.kind == "absence":
        obs = _absence(rule, data, now)
    elif rule.kind == "score":
        obs = _score(rule, data)
    elif rule.kind == "anomaly":
        obs = _anomaly(rule, data)
    elif rule.kind == "burn_rate":
        obs = _burn(rule, data)
    else:
        groups = _groups(rule, data)
        obs = [_threshold_obs(rule, k, summary_value(rule, s), s.count) for k, s in groups.items()]
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
    unit = {
        "outcome_ratio": "%",
        "latency": "ms",
        "absence": "s",
        "burn_rate": "x",
    }.get(rule.kind, "")
    if rule.kind == "sum" or (rule.kind == "anomaly" and rule.metric == "cost_usd"):
        unit = "USD" if (rule.field if rule.kind == "sum" else rule.metric) == "cost_usd" else ""
    if rule.kind == "anomaly" and rule.metric == "p95":
        unit = "ms"
    if rule.kind == "score" and rule.score_stat != "avg":
        unit = "%"
    return (value * 100.0 if unit == "%" else value), unit
