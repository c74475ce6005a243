"""PromQL pieces: metric names, label selectors, durations, and a rule as an expression.

Only what the exposed metrics can answer is translated; anything else comes back as a
`Skipped` with the reason, never as a broader query that would alert on something else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from watchkeeper.alerting._model import Filters, Rule

# Span-derived metrics the server exposes (the names are a contract; see server/_span_metrics).
SPANS = "watchkeeper_spans_total"
DURATION = "watchkeeper_span_duration_seconds"
COST = "watchkeeper_cost_usd_total"
TOKENS = "watchkeeper_tokens_total"
# Metrics the SDK exposes on the application.
HTTP_DURATION = "http_server_request_duration_seconds"
GENAI_DURATION = "gen_ai_client_operation_duration_seconds"
GENAI_TOKENS = "gen_ai_client_token_usage"
GUARD_CALLS = "watchkeeper_guard_calls_total"
GUARD_DURATION = "watchkeeper_guard_duration_seconds"

#: Labels each server metric carries.
METRIC_LABELS: dict[str, frozenset[str]] = {
    SPANS: frozenset({"project", "service", "operation", "outcome"}),
    DURATION: frozenset({"project", "service", "operation"}),
    COST: frozenset({"project", "service", "model"}),
    TOKENS: frozenset({"project", "service", "model", "type"}),
}
#: Rule filter field → metric label.
FILTER_LABELS = {
    "services": "service",
    "operations": "operation",
    "models": "model",
    "outcomes": "outcome",
}
UNSUPPORTED_FILTERS = ("routes", "agents", "environments", "providers", "features")
#: Outcomes that spend an availability budget (fallback is a degraded success).
BAD_OUTCOMES = ("error", "timeout", "rejected")
LLM_OPERATIONS = ("llm", "embedding")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
TOKEN_FIELDS = {
    "input_tokens": ("input",),
    "output_tokens": ("output",),
    "total_tokens": ("input", "output"),
}
SCOPE_NOTE = (
    "Prometheus metrics do not tell root spans from child spans: this rule counts every span "
    "that matches its filters, where Watchkeeper counts requests (root spans) only."
)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule that the exposed metrics cannot express, and why."""

    rule_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Expression:
    """A rule as PromQL: the alert condition and the unit of `$value`."""

    expr: str
    unit: str  # "ratio", "ms", "USD", "tokens", "spans", ""
    approximate: bool = False  # the scope could only be approximated
    native: bool = False  # a PromQL rule: its labels and annotations are Prometheus templates


def number(value: float) -> str:
    """A float as PromQL reads it, without a needless '.0'."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def min_count_clause(rule: Rule, by: str, total: str) -> str:
    """`and on (by) <spans in the window> >= min_count`, or nothing without a min_count."""
    if rule.min_count <= 0:
        return ""
    count = f"sum by ({by}) (increase({total}[{duration(rule.window)}]))"
    return f"\nand on ({by})\n  {count} >= {rule.min_count}"


def quote(value: str) -> str:
    """A PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _regex_alternatives(values: Sequence[str]) -> str:
    # RE2 accepts a backslash before any punctuation, so re.escape's output is valid there.
    return "|".join(re.escape(v) for v in values)


def matcher(label: str, values: Sequence[str]) -> str:
    """`label="v"` for one value, `label=~"a|b"` for several."""
    if len(values) == 1:
        return f"{label}={quote(values[0])}"
    return f"{label}=~{quote(_regex_alternatives(values))}"


def selector(metric: str, matchers: Sequence[str]) -> str:
    """`metric{m1,m2}`."""
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def duration(seconds: float) -> str:
    """A Prometheus duration: '30s', '5m', '1h30m', '7d', '250ms'."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    total = ms // 1000
    if total == 0:
        return "0s"
    parts = []
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts)


def le_label(seconds: float) -> str:
    """A bucket bound as prometheus-client writes it in `le` (Go's float formatting)."""
    text = repr(float(seconds))
    return text if "e" in text or "." in text else text + ".0"


def filter_matchers(
    project: str,
    filters: Filters,
    metric: str,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> list[str] | str:
    """Label matchers for the filters on `metric`, or the reason they cannot be written."""
    for name in UNSUPPORTED_FILTERS:
        if getattr(filters, name):
            return f"filter '{name}' has no label in the exposed metrics"
    if filters.name:
        return "filter 'name' (span name) has no label in the exposed metrics"
    # "*" (the starter rules) means every project: no matcher, and `project` stays a label.
    wanted: dict[str, Sequence[str]] = {} if project == "*" else {"project": [project]}
    for field, label in FILTER_LABELS.items():
        values = getattr(filters, field)
        if values:
            wanted[label] = values
    if filters.scope == "llm" and "operation" not in wanted and metric in (SPANS, DURATION):
        wanted["operation"] = LLM_OPERATIONS
    wanted.update(extra or {})
    labels = METRIC_LABELS[metric]
    missing = sorted(set(wanted) - labels)
    if missing:
        return f"{metric} has no label {', '.join(missing)}"
    return [matcher(label, values) for label, values in wanted.items()]


def group_labels(rule: Rule, metric: str) -> list[str] | str:
    """The `by (...)` labels: project, and the rule's group_by when the metric has it."""
    if rule.group_by is None:
        return ["project"]
    if rule.group_by not in METRIC_LABELS[metric]:
        return f"group_by {rule.group_by} has no label on {metric}"
    return ["project", rule.group_by]


#: Buckets of watchkeeper_span_duration_seconds (seconds); must equal the server's
#: `DURATION_BUCKETS` (a test holds them together: alerting does not import the server).
SPAN_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 8.0, 10.0, 30.0,
)  # fmt: skip
