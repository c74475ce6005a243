"""Daily and weekly digests: collected from the store, rendered by pure functions.

`collect_digest` is the only I/O; `render_text`, `render_markdown` and `render_html` turn a
`Digest` into what a person reads; `next_run` says when the schedule fires next.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from watchkeeper.alerting._config import Filters, ReportSchedule, Slo
from watchkeeper.alerting._fetch import SummaryReader, slo_window, span_filter
from watchkeeper.alerting._notification import Notification
from watchkeeper.store import Group, Store, Summary

Period = Literal["daily", "weekly"]
PERIOD_S: dict[str, float] = {"daily": 86400.0, "weekly": 7 * 86400.0}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOP = 5


@dataclass(frozen=True, slots=True)
class SloLine:
    """One SLO in a digest."""

    name: str
    objective: float
    sli: float | None
    budget_remaining: float | None


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a digest shows, as plain values."""

    project: str
    period: str
    start: float
    end: float
    requests: Summary
    llm: Summary
    failing_agents: Sequence[Group] = ()
    failing_models: Sequence[Group] = ()
    slos: Sequence[SloLine] = field(default_factory=tuple)


def collect_digest(
    store: SummaryReader, project: str, period: str, now: float, slos: Sequence[Slo] = ()
) -> Digest:
    """Query the store for a digest of the `period` that ends at `now`."""
    from watchkeeper.alerting._slo import budget_remaining, sli

    start = now - PERIOD_S[period]
    requests = store.summary(span_filter(project, Filters(scope="requests"), start, now))
    llm_f = span_filter(project, Filters(scope="llm"), start, now)
    agents = store.breakdown(
        span_filter(project, Filters(scope="spans"), start, now), "agent", TOP, "errors"
    )
    models = store.breakdown(llm_f, "model", TOP, "errors")
    lines = []
    for slo in slos:
        if slo.project != project:
            continue
        w = slo_window(store, slo, now - slo.period, now)
        lines.append(SloLine(slo.title, slo.objective, sli(w), budget_remaining(w, slo.objective)))
    return Digest(
        project,
        period,
        start,
        now,
        requests,
        store.summary(llm_f),
        [g for g in agents if g.key and _failures(g.summary)],
        [g for g in models if g.key and _failures(g.summary)],
        tuple(lines),
    )


def _failures(s: Summary) -> int:
    return s.errors + s.timeouts + s.rejected


def _pct(part: float, whole: float) -> str:
    return "n/a" if not whole else f"{100.0 * part / whole:.2f}%"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f} ms"


def _ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{100.0 * v:.2f}%"


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def title(d: Digest) -> str:
    """The heading of a digest."""
    return f"Watchkeeper {d.period} digest — {d.project} ({_day(d.start)} → {_day(d.end)})"


def rows(d: Digest) -> list[tuple[str, str]]:
    """The headline figures as (label, value) pairs."""
    r = d.requests
    return [
        ("Requests", f"{r.count:,}"),
        ("Timeouts", f"{r.timeouts:,} ({_pct(r.timeouts, r.count)})"),
        ("Errors", f"{r.errors:,} ({_pct(r.errors, r.count)})"),
        ("Fallbacks", f"{r.fallbacks:,} ({_pct(r.fallbacks, r.count)})"),
        ("p95 latency", _ms(r.p95_ms)),
        ("Spend", f"${d.llm.cost_usd:,.2f}"),
        ("Tokens", f"{d.llm.input_tokens:,} in / {d.llm.output_tokens:,} out"),
    ]


def _top(groups: Sequence[Group]) -> list[str]:
    return [
        f"{g.key}: {_failures(g.summary):,} failed of {g.summary.count:,}"
        f" ({_pct(_failures(g.summary), g.summary.count)})"
        for g in groups
    ]


def _slo_lines(d: Digest) -> list[str]:
    return [
        f"{s.name}: SLI {_ratio(s.sli)} (objective {_ratio(s.objective)}),"
        f" budget left {_ratio(s.budget_remaining)}"
        for s in d.slos
    ]


def _sections(d: Digest) -> list[tuple[str, list[str]]]:
    return [
        ("Top failing agents", _top(d.failing_agents) or ["none"]),
        ("Top failing models", _top(d.failing_models) or ["none"]),
        ("SLO error budgets", _slo_lines(d) or ["no SLOs defined"]),
    ]


def render_text(d: Digest) -> str:
    """The digest as plain text."""
    out = [title(d), ""]
    width = max(len(k) for k, _ in rows(d))
    out += [f"{k.ljust(width)}  {v}" for k, v in rows(d)]
    for heading, items in _sections(d):
        out += ["", heading + ":"] + [f"  - {i}" for i in items]
    return "\n".join(out) + "\n"


def render_markdown(d: Digest) -> str:
    """The digest as Markdown."""
    out = [f"## {title(d)}", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows(d)]
    for heading, items in _sections(d):
        out += ["", f"**{heading}**", ""] + [f"- {i}" for i in items]
    return "\n".join(out) + "\n"


def render_html(d: Digest) -> str:
    """The digest as a small standalone HTML document."""
    e = html.escape
    table = "".join(f"<tr><th align=left>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows(d))
    parts = [f"<h2>{e(title(d))}</h2>", f"<table>{table}</table>"]
    for heading, items in _sections(d):
        parts.append(f"<h3>{e(heading)}</h3><ul>{''.join(f'<li>{e(i)}</li>' for i in items)}</ul>")
    body = "\n".join(parts)
    return f"<!doctype html><html><head><meta charset=utf-8></head><body>{body}</body></html>\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "html": render_html}


def digest_notification(d: Digest, base_url: str = "") -> Notification:
    """The digest as a notification for channels (Markdown body, text summary)."""
    r = d.requests
    return Notification(
        rule_id=f"digest-{d.period}",
        rule_name=f"{d.period.capitalize()} digest",
        status="firing",
        severity="info",
        fingerprint=f"digest-{d.project}-{d.period}-{int(d.end)}",
        summary=(
            f"{r.count:,} requests, {_pct(r.timeouts, r.count)} timeouts,"
            f" {_pct(r.errors, r.count)} errors, p95 {_ms(r.p95_ms)}, spend ${d.llm.cost_usd:,.2f}"
        ),
        kind="digest",
        body_markdown=render_markdown(d),
        started_at=d.end,
        url=base_url,
        labels={"project": d.project},
    )


def build_digest(
    store: Store, project: str, period: str, now: float, slos: Sequence[Slo], base_url: str
) -> Notification:
    """Collect and render the digest notification of a period ending now."""
    return digest_notification(collect_digest(store, project, period, now, slos), base_url)


def _next_at(now: float, at: str, weekday: str | None) -> float:
    hour, minute = (int(x) for x in at.split(":"))
    dt = datetime.fromtimestamp(now, UTC)
    day = dt.replace(hour=hour, minute=minute, second=0, microsecond=0)
    for ahead in range(8):
        cand = day + timedelta(days=ahead)
        if cand.timestamp() > now and (weekday is None or _DAYS[cand.weekday()] == weekday):
            return cand.timestamp()
    raise AssertionError("unreachable: a weekday recurs within 8 days")


def next_run(schedule: ReportSchedule, now: float) -> tuple[float, str]:
    """When the next digest is due (strictly after `now`) and which period it covers.

    When the daily and weekly digests fall at the same time, the weekly one is sent and the
    daily one the next day (a week's digest covers that day too).
    """
    options: list[tuple[float, int, str]] = []
    if schedule.weekly:
        options.append((_next_at(now, schedule.at, schedule.weekday), 0, "weekly"))
    if schedule.daily:
        options.append((_next_at(now, schedule.at, None), 1, "daily"))
    if not options:
        raise ValueError("no digest is scheduled: set reports.daily or reports.weekly")
    when, _, period = min(options)
    return when, period
