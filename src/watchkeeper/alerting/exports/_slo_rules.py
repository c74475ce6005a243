"""SLOs as Sloth-compatible Prometheus rules: SLI recordings, metadata, burn-rate alerts.

The names and labels are Sloth's (`slo:sli_error:ratio_rate<window>`, `slo:objective:ratio`,
`slo:error_budget:ratio`, `slo:time_period:days`, `slo:current_burn_rate:ratio`,
`slo:period_burn_rate:ratio`, `slo:period_error_budget_remaining:ratio`, labels `sloth_id`,
`sloth_service`, `sloth_slo`, `sloth_window`), so Sloth's Grafana dashboards work on them.
The alerts are the SRE workbook's multi-window multi-burn-rate pair: page at 14.4× (1h and 5m)
or 6× (6h and 30m), ticket at 3× (1d and 2h) or 1× (3d and 6h).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting._model import Slo
from watchkeeper.alerting._promql import (
    BAD_OUTCOMES,
    DURATION,
    SCOPE_NOTE,
    SPAN_DURATION_BUCKETS,
    SPANS,
    Skipped,
    duration,
    filter_matchers,
    le_label,
    matcher,
    number,
    selector,
)
from watchkeeper.alerting.exports._rules import alert_name

SLI_WINDOWS = (300, 1800, 3600, 7200, 21600, 86400, 259200)
#: (sloth severity, our severity, ((long, short, factor), (long, short, factor)))
BURN_ALERTS: tuple[tuple[str, str, tuple[tuple[int, int, float], ...]], ...] = (
    ("page", "critical", ((3600, 300, 14.4), (21600, 1800, 6.0))),
    ("ticket", "warning", ((86400, 7200, 3.0), (259200, 21600, 1.0))),
)
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class SloExport:
    """Rule groups for the SLOs, and the SLOs that could not be expressed."""

    groups: tuple[dict[str, Any], ...]
    skipped: tuple[Skipped, ...]


def sloth_ids(slo: Slo) -> dict[str, str]:
    """The three Sloth identity labels."""
    services = list(slo.filters.services)
    service = services[0] if len(services) == 1 else slo.project
    return {"sloth_id": f"{service}-{slo.id}", "sloth_service": service, "sloth_slo": slo.id}


def _ids_selector(ids: dict[str, str]) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in ids.items())


def error_ratio_template(slo: Slo) -> str | Skipped:
    """The SLI error ratio with `{window}` where the range goes, or why it cannot be written."""
    base = filter_matchers(
        slo.project, slo.filters, SPANS if slo.sli == "availability" else DURATION
    )
    if isinstance(base, str):
        return Skipped(slo.id, base)
    if slo.sli == "availability":
        bad = [*base, matcher("outcome", BAD_OUTCOMES)]
        total = selector(SPANS, base)
        return (
            f"(sum(rate({selector(SPANS, bad)}[{{window}}])) or vector(0))\n"
            f"/\n(sum(rate({total}[{{window}}])))"
        )
    threshold_s = (slo.latency_threshold_ms or 0) / 1000
    if threshold_s not in SPAN_DURATION_BUCKETS:
        bounds = ", ".join(f"{b * 1000:g}" for b in SPAN_DURATION_BUCKETS)
        return Skipped(slo.id, f"latency threshold must be a bucket bound in ms ({bounds})")
    count = selector(f"{DURATION}_count", base)
    good = selector(f"{DURATION}_bucket", [*base, f'le="{le_label(threshold_s)}"'])
    return (
        f"(sum(rate({count}[{{window}}])) - sum(rate({good}[{{window}}])))\n"
        f"/\n(sum(rate({count}[{{window}}])))"
    )


def _sli_group(slo: Slo, ratio: str, labels: dict[str, str]) -> dict[str, Any]:
    ids = sloth_ids(slo)
    rules: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{duration(w)}",
            "expr": ratio.replace("{window}", duration(w)),
            "labels": {**labels, "sloth_window": duration(w)},
        }
        for w in SLI_WINDOWS
    ]
    period = duration(slo.period)
    short = f"slo:sli_error:ratio_rate5m{{{_ids_selector(ids)}}}"
    rules.append(
        {
            "record": f"slo:sli_error:ratio_rate{period}",
            "expr": f"sum_over_time({short}[{period}])\n/ ignoring (sloth_window)\n"
            f"count_over_time({short}[{period}])",
            "labels": {**labels, "sloth_window": period},
        }
    )
    return {"name": f"sloth-slo-sli-recordings-{ids['sloth_id']}", "rules": rules}


def _meta_group(slo: Slo, labels: dict[str, str]) -> dict[str, Any]:
    ids = sloth_ids(slo)
    sel = _ids_selector(ids)
    period = duration(slo.period)
    join = "/ on (sloth_id, sloth_slo, sloth_service) group_left\n"
    budget = f"slo:error_budget:ratio{{{sel}}}"
    exprs = [
        ("slo:objective:ratio", f"vector({number(slo.objective)})"),
        ("slo:error_budget:ratio", f"vector({number(round(1 - slo.objective, 12))})"),
        ("slo:time_period:days", f"vector({number(slo.period / 86400)})"),
        ("slo:current_burn_rate:ratio", f"slo:sli_error:ratio_rate5m{{{sel}}}\n{join}{budget}"),
        (
            "slo:period_burn_rate:ratio",
            f"slo:sli_error:ratio_rate{period}{{{sel}}}\n{join}{budget}",
        ),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{{{sel}}}"),
    ]
    rules = [{"record": name, "expr": expr, "labels": dict(labels)} for name, expr in exprs]
    info = {**labels, "sloth_mode": "watchkeeper-export", "sloth_objective": number(slo.objective)}
    rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": info})
    return {"name": f"sloth-slo-meta-recordings-{ids['sloth_id']}", "rules": rules}


def _burn_condition(sel: str, windows: tuple[tuple[int, int, float], ...], budget: float) -> str:
    parts = []
    for long, short, factor in windows:
        limit = f"({number(factor)} * {number(budget)})"
        parts.append(
            f"(\n    (slo:sli_error:ratio_rate{duration(short)}{{{sel}}} > {limit})\n"
            f"    and ignoring (sloth_window)\n"
            f"    (slo:sli_error:ratio_rate{duration(long)}{{{sel}}} > {limit})\n)"
        )
    # Without the outer `max`, the alert would carry the `sloth_window` of whichever pair
    # matched, and Alertmanager would see a new alert each time the pair changed.
    body = "\nor ignoring (sloth_window)\n".join(parts)
    return f"max without (sloth_window) (\n{body}\n)"


def _alert_group(slo: Slo, approximate: bool) -> dict[str, Any]:
    ids = sloth_ids(slo)
    sel = _ids_selector(ids)
    budget = round(1 - slo.objective, 12)
    rules = []
    for sloth_severity, severity, windows in BURN_ALERTS:
        notes = {
            "summary": slo.annotations.get("summary")
            or f"{slo.title}: the error budget is burning too fast",
            "title": f"({sloth_severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}}"
            " SLO error budget burn rate is too fast.",
            **{k: v for k, v in slo.annotations.items() if k != "summary"},
        }
        if approximate:
            notes["watchkeeper_note"] = SCOPE_NOTE
        rules.append(
            {
                "alert": alert_name(slo.id) + "ErrorBudgetBurn",
                "expr": _burn_condition(sel, windows, budget),
                "labels": {
                    **{_NOT_NAME.sub("_", k): v for k, v in slo.labels.items()},
                    "severity": severity,
                    "sloth_severity": sloth_severity,
                    "slo": slo.id,
                },
                "annotations": notes,
            }
        )
    return {"name": f"sloth-slo-alerts-{ids['sloth_id']}", "rules": rules}


def render_slo_rules(slos: Sequence[Slo]) -> SloExport:
    """The three Sloth rule groups of every expressible SLO."""
    groups: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for slo in slos:
        ratio = error_ratio_template(slo)
        if isinstance(ratio, Skipped):
            skipped.append(ratio)
            continue
        labels = {**{_NOT_NAME.sub("_", k): v for k, v in slo.labels.items()}, **sloth_ids(slo)}
        groups.append(_sli_group(slo, ratio, labels))
        groups.append(_meta_group(slo, labels))
        if slo.alerting:
            groups.append(_alert_group(slo, slo.filters.scope == "requests"))
    return SloExport(tuple(groups), tuple(skipped))
