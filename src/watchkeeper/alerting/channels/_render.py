"""Pure pieces every channel shows: title, value against threshold, window, links, facts.

Channels differ in markup only; what a person reads is decided here once, so a Slack message
and an e-mail about the same alert say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from watchkeeper.alerting._notification import Notification, Severity

MAX_TRACES = 5

#: Colour per severity (hex without '#'); resolved alerts are green whatever their severity.
COLOURS: dict[str, str] = {
    "critical": "D92D20",
    "warning": "F79009",
    "info": "2E90FA",
    "resolved": "12B76A",
}
EMOJI: dict[str, str] = {
    "critical": "🔴",
    "warning": "🟠",
    "info": "🔵",
    "resolved": "✅",
}


@dataclass(frozen=True, slots=True)
class Link:
    """A labelled URL."""

    text: str
    url: str


def tone(n: Notification) -> str:
    """The key into COLOURS/EMOJI: the severity, or 'resolved'."""
    return "resolved" if n.status == "resolved" else n.severity


def colour(n: Notification) -> str:
    """Hex colour (no '#') for the notification."""
    return COLOURS[tone(n)]


def emoji(n: Notification) -> str:
    """Emoji for the notification."""
    return EMOJI[tone(n)]


def status_word(n: Notification) -> str:
    """FIRING, RESOLVED, TEST, DIGEST or SUMMARY."""
    if n.kind == "alert":
        return n.status.upper()
    return n.kind.upper()


def title(n: Notification) -> str:
    """One line: status, severity and rule name."""
    return f"[{status_word(n)}] {n.rule_name} ({severity_label(n.severity)})"


def severity_label(severity: Severity) -> str:
    """Severity as people write it."""
    return severity.capitalize()


def format_number(value: float, unit: str = "") -> str:
    """A number with its unit, rounded for people ('12.5%', '830 ms', '$1.20' as '1.20 USD')."""
    if math.isnan(value) or math.isinf(value):
        text = str(value)
    elif value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    elif abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.4g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def format_window(seconds: float) -> str:
    """A window as '30s', '5m', '1h30m', '2d'."""
    total = round(seconds)
    if total <= 0:
        return "instant"
    parts: list[str] = []
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts)


def format_time(unix_s: float) -> str:
    """Unix seconds as an ISO-8601 UTC timestamp to the second."""
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def rfc3339(unix_s: float) -> str:
    """Unix seconds as RFC 3339 with milliseconds, the form Alertmanager and PagerDuty read."""
    return (
        datetime.fromtimestamp(unix_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def body_text(n: Notification) -> str:
    """The free text under the summary: a digest's or summary's body, else the description."""
    return n.body_markdown if n.kind in ("digest", "summary") else n.description


def value_text(n: Notification) -> str:
    """'observed 12.5% > threshold 5% over 5m', or '' when the rule has no value."""
    if n.value is None:
        return ""
    text = f"observed {format_number(n.value, n.unit)}"
    if n.threshold is not None:
        text += f" {n.comparison} threshold {format_number(n.threshold, n.unit)}"
    if n.window_s:
        text += f" over {format_window(n.window_s)}"
    return text


def trace_links(n: Notification) -> list[Link]:
    """Up to five example traces, linked when a URL template is known."""
    links = []
    for trace_id in n.trace_ids[:MAX_TRACES]:
        url = n.trace_url_template.replace("{trace_id}", trace_id) if n.trace_url_template else ""
        links.append(Link(trace_id, url))
    return links


def links(n: Notification) -> list[Link]:
    """The alert in the UI, then the runbook and dashboard annotations when present."""
    out = [Link("Open in Watchkeeper", n.url)] if n.url else []
    for key, text in (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard")):
        if n.annotations.get(key):
            out.append(Link(text, n.annotations[key]))
    return out


def facts(n: Notification) -> list[tuple[str, str]]:
    """Ordered (label, value) pairs shown as a table in every channel."""
    rows = [("Status", status_word(n)), ("Severity", severity_label(n.severity))]
    if n.value is not None:
        rows.append(("Value", format_number(n.value, n.unit)))
    if n.threshold is not None:
        rows.append(("Threshold", f"{n.comparison} {format_number(n.threshold, n.unit)}"))
    if n.window_s:
        rows.append(("Window", format_window(n.window_s)))
    if n.started_at:
        rows.append(("Started", format_time(n.started_at)))
    if n.ended_at is not None:
        rows.append(("Resolved", format_time(n.ended_at)))
    rows.extend((key, value) for key, value in sorted(n.labels.items()))
    return rows


def plain_text(n: Notification) -> str:
    """The whole notification as plain text (fallbacks, e-mail text part, webhooks)."""
    lines = [title(n), n.summary]
    if n.kind in ("digest", "summary") and n.body_markdown:
        lines.append(n.body_markdown)
    elif n.description:
        lines.append(n.description)
    if value_text(n):
        lines.append(value_text(n))
    lines.append("")
    lines.extend(f"{label}: {value}" for label, value in facts(n))
    traces = trace_links(n)
    if traces:
        lines.append("Example traces:")
        lines.extend(f"  {t.text} {t.url}".rstrip() for t in traces)
    lines.extend(f"{link.text}: {link.url}" for link in links(n))
    return "\n".join(lines)
