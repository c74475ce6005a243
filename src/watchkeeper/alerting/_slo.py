"""SLOs: error budget, burn rates, the burn-down series, and burn-rate alert rules.

An SLO is judged on requests: good ones are those that succeeded (or fell back) for an
availability SLI, those at or under the threshold for a latency SLI. The budget is the share
of bad requests the objective allows over the period; the burn rate is how many times faster
than that a window spends it. Alerts follow the multi-window multi-burn-rate table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting._evaluate import Window, burn_rate
from watchkeeper.alerting._fetch import span_filter
from watchkeeper.alerting._model import DEFAULT_BURN_WINDOWS, Rule, Slo
from watchkeeper.alerting.channels import format_window
from watchkeeper.alerting.kinds import BurnRateRule
from watchkeeper.store import Store

MAX_POINTS = 120


def budget_remaining(window: Window, objective: float) -> float | None:
    """Share of the period's error budget left (1 = untouched, 0 = spent, < 0 = overspent)."""
    if window.total == 0:
        return None
    allowed = (1.0 - objective) * window.total
    return 1.0 - window.bad / allowed


def sli(window: Window) -> float | None:
    """Share of good requests."""
    return None if window.total == 0 else (window.total - window.bad) / window.total


def burn_rules(slo: Slo) -> list[Rule]:
    """The burn-rate alert rules of an SLO (one per window pair of the table)."""
    if not slo.alerting:
        return []
    rules: list[Rule] = []
    for long_s, short_s, factor, severity in DEFAULT_BURN_WINDOWS:
        name = f"{slo.title}: error budget burn {factor:g}x over {format_window(long_s)}"
        rules.append(
            BurnRateRule(
                id=f"slo-{slo.id}-burn-{format_window(long_s)}",
                name=name,
                project=slo.project,
                slo=slo.id,
                window=long_s,
                short_window=short_s,
                factor=factor,
                threshold=factor,
                severity=severity,
                min_count=slo.min_count,
                channels=slo.channels,
                labels={"slo": slo.id, "long_window": format_window(long_s), **slo.labels},
                annotations={
                    "summary": (
                        f"{slo.title} burns its error budget {{value}} times faster than allowed"
                        f" ({factor:g}x over {format_window(long_s)} and"
                        f" {format_window(short_s)})"
                    ),
                    **slo.annotations,
                },
                repeat_interval=3600.0 if severity == "critical" else 6 * 3600.0,
            )
        )
    return rules


@dataclass(frozen=True, slots=True)
class BurnPoint:
    """One point of the burn-down: budget left at `t` (unix s) since the period began."""

    t: float
    total: int
    bad: int
    budget_remaining: float | None


def burndown(
    buckets: Sequence[tuple[float, int, int]], objective: float, total_expected: int | None = None
) -> list[BurnPoint]:
    """Cumulative budget left after each (t, total, bad) bucket, oldest first.

    The budget is computed against the requests seen so far (or `total_expected`), so a
    period that starts badly shows its budget falling as it happens.
    """
    out = []
    total = bad = 0
    for t, n, b in sorted(buckets):
        total, bad = total + n, bad + b
        denom = total_expected if total_expected else total
        left = None if denom == 0 else 1.0 - bad / ((1.0 - objective) * denom)
        out.append(BurnPoint(t, total, bad, left))
    return out


def step_for(period_s: float) -> int:
    """A bucket size giving at most MAX_POINTS points over the period, on whole minutes."""
    step = max(60, int(period_s // MAX_POINTS))
    return step - step % 60


def _buckets(store: Store, slo: Slo, start: float, end: float) -> list[tuple[float, int, int]]:
    step = step_for(end - start)
    f = span_filter(slo.project, slo.filters, start, end)
    totals = store.timeseries(f, step)
    if slo.sli == "availability":
        return [
            (p.bucket_ns / 1e9, p.summary.count, p.summary.count - p.summary.success
             - p.summary.fallbacks)
            for p in totals
        ]  # fmt: skip
    good_f = dataclasses.replace(f, max_duration_ms=slo.latency_threshold_ms)
    good = {p.bucket_ns: p.summary.count for p in store.timeseries(good_f, step)}
    return [
        (p.bucket_ns / 1e9, p.summary.count, p.summary.count - good.get(p.bucket_ns, 0))
        for p in totals
    ]


def slo_status(store: Store, slo: Slo, now: float, series: bool = True) -> dict[str, Any]:
    """An SLO as the API shows it: SLI, budget left, burn rates per window, burn-down."""
    from watchkeeper.alerting._fetch import slo_window

    period = slo_window(store, slo, now - slo.period, now)
    burns = []
    for long_s, short_s, factor, severity in DEFAULT_BURN_WINDOWS:
        long, short = (
            slo_window(store, slo, now - long_s, now),
            slo_window(store, slo, now - short_s, now),
        )
        burns.append(
            {
                "long_window_s": long_s,
                "short_window_s": short_s,
                "factor": factor,
                "severity": severity,
                "long_burn_rate": burn_rate(long, slo.objective),
                "short_burn_rate": burn_rate(short, slo.objective),
                "firing": _both_over(long, short, slo.objective, factor),
            }
        )
    out: dict[str, Any] = {
        **slo.model_dump(mode="json", by_alias=True),
        "total": period.total,
        "bad": period.bad,
        "sli_value": sli(period),
        "budget_remaining": budget_remaining(period, slo.objective),
        "burn_rate": burn_rate(period, slo.objective),
        "burn_rates": burns,
    }
    if series:
        points = burndown(_buckets(store, slo, now - slo.period, now), slo.objective)
        out["burndown"] = [dataclasses.asdict(p) for p in points]
    return out


def _both_over(long: Window, short: Window, objective: float, factor: float) -> bool:
    a, b = burn_rate(long, objective), burn_rate(short, objective)
    return a is not None and b is not None and a > factor and b > factor
