"""Our alert rules as Prometheus alerting rules over the span-derived metrics."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting.exports._inputs import AnomalyRuleInput, RuleInput
from watchkeeper.alerting.exports._promql import (
    COST,
    DURATION,
    QUANTILES,
    SCOPE_NOTE,
    SPANS,
    TOKEN_FIELDS,
    TOKENS,
    Expression,
    Skipped,
    duration,
    filter_matchers,
    group_labels,
    matcher,
    selector,
)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
TOTAL_TOKENS = {"type": TOKEN_FIELDS["total_tokens"]}
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


def number(value: float) -> str:
    """A float as PromQL reads it, without a needless '.0'."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def alert_name(rule_id: str) -> str:
    """'high-timeout-rate' → 'HighTimeoutRate' (a valid, conventional alert name)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", rule_id) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "WatchkeeperRule"
    return name if name[0].isalpha() else "Rule" + name


def _min_count(rule: RuleInput, by: str, total: str) -> str:
    if rule.min_count <= 0:
        return ""
    count = f"sum by ({by}) (increase({total}[{duration(rule.window)}]))"
    return f"\nand on ({by})\n  {count} >= {rule.min_count}"


def _outcome_ratio(rule: RuleInput) -> Expression | str:
    base = filter_matchers(rule.project, rule.filters, SPANS)
    bad = filter_matchers(rule.project, rule.filters, SPANS, {"outcome": rule.outcomes})
    by = group_labels(rule, SPANS)
    if isinstance(base, str) or isinstance(bad, str) or isinstance(by, str):
        return next(x for x in (base, bad, by) if isinstance(x, str))
    g, w = ", ".join(by), duration(rule.window)
    total = selector(SPANS, base)
    rate_total = f"sum by ({g}) (rate({total}[{w}]))"
    rate_bad = f"sum by ({g}) (rate({selector(SPANS, bad)}[{w}]))"
    # With no bad span in the window the numerator is empty: count it as 0, not as no data.
    expr = (
        f"(\n  ({rate_bad} or 0 * {rate_total})\n/\n  {rate_total}\n)"
        f" {rule.comparison} {number(rule.threshold)}" + _min_count(rule, g, total)
    )
    return Expression(expr, "ratio", rule.filters.scope == "requests")


def _latency(rule: RuleInput) -> Expression | str:
    base = filter_matchers(rule.project, rule.filters, DURATION)
    by = group_labels(rule, DURATION)
    if isinstance(base, str) or isinstance(by, str):
        return base if isinstance(base, str) else str(by)
    g, w = ", ".join(by), duration(rule.window)
    if rule.statistic in QUANTILES:
        buckets = selector(f"{DURATION}_bucket", base)
        q = QUANTILES[rule.statistic]
        value = f"histogram_quantile({q}, sum by ({g}, le) (rate({buckets}[{w}])))"
    elif rule.statistic == "avg":
        total = f"sum by ({g}) (rate({selector(f'{DURATION}_sum', base)}[{w}]))"
        value = f"{total}\n/\nsum by ({g}) (rate({selector(f'{DURATION}_count', base)}[{w}]))"
    else:
        return f"statistic {rule.statistic} cannot be computed from a histogram"
    expr = f"(\n  {value}\n) * 1000 {rule.comparison} {number(rule.threshold)}"
    expr += _min_count(rule, g, selector(f"{DURATION}_count", base))
    return Expression(expr, "ms", rule.filters.scope == "requests")


def _sum(rule: RuleInput) -> Expression | str:
    if rule.field == "cost_usd":
        metric, extra, unit = COST, {}, "USD"
    elif rule.field in TOKEN_FIELDS:
        metric, extra, unit = TOKENS, {"type": TOKEN_FIELDS[rule.field]}, "tokens"
    else:
        return f"field {rule.field} has no metric"
    base = filter_matchers(rule.project, rule.filters, metric, extra)
    by = group_labels(rule, metric)
    if isinstance(base, str) or isinstance(by, str):
        return base if isinstance(base, str) else str(by)
    g, w = ", ".join(by), duration(rule.window)
    value = f"sum by ({g}) (increase({selector(metric, base)}[{w}]))"
    return Expression(f"{value} {rule.comparison} {number(rule.threshold)}", unit)


def _count(rule: RuleInput) -> Expression | str:
    base = filter_matchers(rule.project, rule.filters, SPANS)
    by = group_labels(rule, SPANS)
    if isinstance(base, str) or isinstance(by, str):
        return base if isinstance(base, str) else str(by)
    g, w = ", ".join(by), duration(rule.window)
    value = f"sum by ({g}) (increase({selector(SPANS, base)}[{w}]))"
    expr = f"{value} {rule.comparison} {number(rule.threshold)}"
    return Expression(expr, "spans", rule.filters.scope == "requests")


def _absence(rule: RuleInput) -> Expression | str:
    base = filter_matchers(rule.project, rule.filters, SPANS)
    by = group_labels(rule, SPANS)
    if isinstance(base, str) or isinstance(by, str):
        return base if isinstance(base, str) else str(by)
    g, sel = ", ".join(by), selector(SPANS, base)
    # Silent now, but seen within the lookback: a group that never sent is not "down".
    expr = (
        f"sum by ({g}) (increase({sel}[{duration(rule.window)}])) == 0\n"
        f"and on ({g})\n  sum by ({g}) (increase({sel}[{duration(rule.lookback)}])) > 0"
    )
    if rule.group_by is None:
        expr = f"(\n{expr}\n)\nor absent_over_time({sel}[{duration(rule.window)}])"
    return Expression(expr, "")


def _anomaly_value(rule: AnomalyRuleInput, offset: str) -> tuple[str, str, str] | str:
    """(value, days-with-data condition, unit) of the rule's metric over the window `offset` ago."""
    w = duration(rule.window) + "]" + (f" offset {offset}" if offset else "")
    spans = filter_matchers(rule.project, rule.filters, SPANS)
    if isinstance(spans, str):
        return spans
    total = f"sum by (project) (increase({selector(SPANS, spans)}[{w}))"
    if rule.metric in ("cost_usd", "total_tokens"):
        metric, extra = (COST, {}) if rule.metric == "cost_usd" else (TOKENS, TOTAL_TOKENS)
        base = filter_matchers(rule.project, rule.filters, metric, extra)
        if isinstance(base, str):
            return base
        value = f"sum by (project) (increase({selector(metric, base)}[{w}))"
        return value, f"{value} > 0", "USD" if metric == COST else "tokens"
    if rule.metric == "count":
        return total, f"{total} > 0", "spans"
    if rule.metric in ("errors", "timeouts"):
        bad = [*spans, matcher("outcome", [rule.metric.rstrip("s")])]
        value = f"(sum by (project) (increase({selector(SPANS, bad)}[{w})) or 0 * {total})"
        return value, f"{total} > 0", "spans"
    if rule.metric == "p95":
        buckets = selector(f"{DURATION}_bucket", spans)
        value = f"histogram_quantile(0.95, sum by (project, le) (rate({buckets}[{w}))) * 1000"
        return value, f"{total} > 0", "ms"
    return f"anomaly metric {rule.metric} has no metric"


def _anomaly(rule: RuleInput) -> Expression | str:
    if not isinstance(rule, AnomalyRuleInput):
        return "anomaly rule without metric, factor, baseline_days and min_value"
    now = _anomaly_value(rule, "")
    if isinstance(now, str):
        return now
    days = []
    for day in range(1, rule.baseline_days + 1):
        past = _anomaly_value(rule, f"{day}d")
        assert not isinstance(past, str)  # same matchers as `now`
        term = f"({past[0]}) and on (project) ({past[1]})"
        days.append(f'label_replace({term}, "baseline_day", "{day}", "", "")')
    past_days = "\n  or ".join(days)
    # The engine's rule: above factor × the median of the same window on past days that had
    # traffic, at least min_value, and only once three such days exist.
    expr = (
        f"({now[0]})\n> {number(rule.factor)} * quantile by (project) (0.5,\n  {past_days}\n)\n"
        f"and on (project) ({now[0]}) >= {number(rule.min_value)}\n"
        f"and on (project) count by (project) (\n  {past_days}\n) >= 3"
    )
    return Expression(expr, now[2], rule.filters.scope == "requests")


KINDS: dict[str, Callable[[RuleInput], Expression | str]] = {
    "outcome_ratio": _outcome_ratio,
    "latency": _latency,
    "sum": _sum,
    "count": _count,
    "absence": _absence,
    "anomaly": _anomaly,
}
NOT_EXPRESSIBLE = {
    "score": "evaluation scores are not exposed as Prometheus metrics",
    "burn_rate": "exported with its SLO as multi-window burn-rate alerts",
}


def rule_expression(rule: RuleInput) -> Expression | Skipped:
    """The rule's condition in PromQL, or why it cannot be written."""
    build = KINDS.get(rule.kind)
    if build is None:
        return Skipped(rule.id, NOT_EXPRESSIBLE.get(rule.kind, f"kind {rule.kind} is unknown"))
    result = build(rule)
    return Skipped(rule.id, result) if isinstance(result, str) else result


def template(text: str, rule: RuleInput, unit: str) -> str:
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


def alert_rule(
    rule: RuleInput, expression: Expression, for_s: float | None = None
) -> dict[str, Any]:
    """One entry of a rule group's `rules:` list."""
    labels = {_NOT_NAME.sub("_", k): v for k, v in rule.labels.items()}
    # The same `alertname`, `rule` and `severity` labels as the engine's own alerts, so routes
    # and silences written for one work for the other.
    labels.update({"severity": rule.severity, "rule": rule.id})
    summary = rule.annotations.get("summary") or f"{rule.title}: {{value}}"
    notes = {k: v for k, v in rule.annotations.items() if k != "summary"}
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
    rules: Sequence[RuleInput], interval_s: float | None = None, for_s: float | None = None
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
