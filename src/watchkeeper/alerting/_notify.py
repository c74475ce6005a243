"""Building notifications from alert events, and the retry schedule, as pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from watchkeeper.alerting._config import Rule
from watchkeeper.alerting._evaluate import display_value
from watchkeeper.alerting._notification import Notification
from watchkeeper.alerting._state import AlertState
from watchkeeper.alerting.channels import format_number, format_window

MAX_RETRY_AFTER_S = 3600.0


class _Template(dict[str, str]):
    # A summary template may name a label the alert lacks (an ungrouped rule): say "all".
    def __missing__(self, key: str) -> str:
        return f"all {key}s" if key in ("service", "model", "route", "agent") else f"{{{key}}}"


def render_summary(rule: Rule, state: AlertState) -> str:
    """The one line a person reads first, from the rule's `summary` template (or a default)."""
    own = rule.render_annotations(state.labels, state.value)
    if own is not None:
        return own.get("summary") or _default_summary(rule, state)
    value, unit = display_value(rule, state.value)
    threshold, _ = display_value(rule, state.threshold)
    fields = _Template(state.labels)
    fields.update(
        value="n/a" if value is None else format_number(value, unit),
        threshold="n/a" if threshold is None else format_number(threshold, unit),
        window=format_window(rule.window),
        rule=rule.title,
    )
    template = rule.annotations.get("summary") or "{rule}: {value} {comparison} {threshold}"
    fields["comparison"] = rule.comparison
    try:
        return template.format_map(fields)
    except (ValueError, IndexError, AttributeError):  # a broken template must not lose the alert
        return f"{rule.title}: {fields['value']} {rule.comparison} {fields['threshold']}"


def _default_summary(rule: Rule, state: AlertState) -> str:
    # A rule whose kind renders its own annotations, without a summary: its name and group.
    shown = {"alertname", "rule", "severity", *rule.labels}
    group = ", ".join(f"{k}={v}" for k, v in sorted(state.labels.items()) if k not in shown)
    value = "n/a" if state.value is None else format_number(state.value, rule.unit())
    return f"{rule.title}: {value}" + (f" ({group})" if group else "")


def build_notification(
    rule: Rule,
    state: AlertState,
    status: Literal["firing", "resolved"],
    base_url: str,
) -> Notification:
    """The notification of one alert event."""
    value, unit = display_value(rule, state.value)
    threshold, _ = display_value(rule, state.threshold)
    base = base_url.rstrip("/")
    own = rule.render_annotations(state.labels, state.value)
    notes = {k: v for k, v in (rule.annotations if own is None else own).items()}
    description = notes.pop("description", "") if own is not None else ""
    return Notification(
        rule_id=rule.id,
        rule_name=rule.title,
        status=status,
        severity=rule.severity,
        fingerprint=state.fingerprint,
        summary=render_summary(rule, state),
        description=description or rule.description,
        value=value,
        threshold=threshold,
        comparison=rule.comparison,
        unit=unit,
        window_s=rule.window,
        labels=dict(state.labels),
        annotations={k: v for k, v in notes.items() if k != "summary"},
        started_at=state.firing_since or 0.0,
        ended_at=state.resolved_at if status == "resolved" else None,
        url=f"{base}/alerts?rule={rule.id}" if base else "",
        trace_ids=state.trace_ids,
        trace_url_template=f"{base}/traces/{{trace_id}}" if base else "",
    )


def held_summary(rule: Rule, held: Sequence[str], now: float, cap: int) -> Notification:
    """One notification telling what the per-hour cap held back for a rule."""
    lines = [f"- {item}" for item in held[:50]]
    if len(held) > 50:
        lines.append(f"- … and {len(held) - 50} more")
    text = (
        f"{len(held)} notification(s) of rule {rule.title} were held back "
        f"(cap: {cap} per hour):\n" + "\n".join(lines)
    )
    return Notification(
        rule_id=rule.id,
        rule_name=rule.title,
        status="firing",
        severity=rule.severity,
        fingerprint=f"{rule.id}-held",
        summary=f"{len(held)} notification(s) held back by the hourly cap",
        kind="summary",
        body_markdown=text,
        started_at=now,
        labels={"rule": rule.id},
    )


def test_notification(channel: str, now: float, base_url: str) -> Notification:
    """The notification `POST /channels/{name}/test` sends."""
    return Notification(
        rule_id="test",
        rule_name=f"Test of channel {channel}",
        status="firing",
        severity="info",
        fingerprint=f"test-{channel}",
        summary="This is a test notification from Watchkeeper; the channel works.",
        kind="test",
        started_at=now,
        url=base_url,
    )


def held_line(kind: str, labels: Mapping[str, str]) -> str:
    """How one held-back event is listed in the summary."""
    group = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname",))
    return f"{kind}: {group}"


def retry_delay(attempts: int, retry_after: float | None, base: float, cap: float) -> float:
    """Seconds before the next try: exponential from `base` up to `cap`, or what 429 asked."""
    backoff = min(cap, base * (2.0 ** max(0, attempts - 1)))
    if retry_after:  # the receiver knows best when it can take more
        return min(retry_after, MAX_RETRY_AFTER_S)
    return backoff
