"""Our alert rules as Prometheus alerting rules over the span-derived metrics.

Each kind writes its own condition (`Rule.promql`, in `alerting.kinds`); this module wraps
it in a rule with labels, annotations and templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting._model import Rule
from watchkeeper.alerting._promql import SCOPE_NOTE, Expression, Skipped, duration, number

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
VALUE_TEMPLATES = {
    "ratio": "{{ $value | humanizePercentage }}",
    "ms": '{{ $value | printf "%.0f" }} ms',
    "USD": '{{ $value | printf "%.2f" }} USD',
}


@dataclass(frozen=True, slots=True)
class RulesExport:
    """A Prometheus rule file as data, and the rules that could not be expressed."""

    document: dict[str, Any]
    skipped: tuple[Skipped, ...]


def alert_name(rule_id: str) -> str:
    """'high-timeout-rate' → 'HighTimeoutRate' (a valid, conventional alert name)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", rule_id) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "WatchkeeperRule"
    return name if name[0].isalpha() else "Rule" + name


def rule_expression(rule: Rule) -> Expression | Skipped:
    """The rule's condition in PromQL, or why it cannot be written."""
    result = rule.promql()
    return Skipped(rule.id, result) if isinstance(result, str) else result


def template(text: str, rule: Rule, unit: str) -> str:
    """Our `{label}` / `{value}` placeholders as Prometheus template expressions."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "value":
            return VALUE_TEMPLATES.get(unit, "{{ $value | humanize }}")
        if key == "threshold":
            if unit == "ratio":
                return f"{rule.threshold * 100:g}%"
            return f"{number(rule.threshold)} {unit}".strip()
        if key == "window":
            return duration(rule.window)
        return "{{ $labels." + _NOT_NAME.sub("_", key) + " }}"

    return _PLACEHOLDER.sub(replace, text)


def alert_rule(rule: Rule, expression: Expression, for_s: float | None = None) -> dict[str, Any]:
    """One entry of a rule group's `rules:` list."""
    labels = {_NOT_NAME.sub("_", k): v for k, v in rule.labels.items()}
    # The same `alertname`, `rule` and `severity` labels as the engine's own alerts, so routes
    # and silences written for one work for the other.
    labels.update({"severity": rule.severity, "rule": rule.id})
    notes = {k: v for k, v in rule.annotations.items() if k != "summary"}
    if expression.native:  # written as Prometheus templates already
        notes = dict(rule.annotations)
    else:
        summary = rule.annotations.get("summary") or f"{rule.title}: {{value}}"
        notes["summary"] = template(summary, rule, expression.unit)
    notes.setdefault("title", rule.title)
    if rule.description:
        notes.setdefault("description", rule.description)
    if expression.approximate:
        notes["watchkeeper_note"] = SCOPE_NOTE
    out: dict[str, Any] = {"alert": rule.title or alert_name(rule.id), "expr": expression.expr}
    wait = rule.for_ if for_s is None else for_s
    out["for"] = duration(wait)
    if rule.keep_firing_for:
        out["keep_firing_for"] = duration(rule.keep_firing_for)
    out["labels"] = labels
    out["annotations"] = notes
    return out


def render_alert_rules(
    rules: Sequence[Rule], interval_s: float | None = None, for_s: float | None = None
) -> RulesExport:
    """A rule file with one group of every expressible, enabled rule."""
    entries, skipped = [], []
    for rule in rules:
        if not rule.enabled:
            continue
        result = rule_expression(rule)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            entries.append(alert_rule(rule, result, for_s))
    group: dict[str, Any] = {"name": "watchkeeper-rules"}
    if interval_s is not None:
        group["interval"] = duration(interval_s)
    group["rules"] = entries
    return RulesExport({"groups": [group] if entries else []}, tuple(skipped))
