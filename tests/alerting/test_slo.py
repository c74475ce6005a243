"""SLO arithmetic: budget, burn rate, burn-down, and the burn-rate rule table."""

from __future__ import annotations

import pytest

from watchkeeper.alerting import Slo
from watchkeeper.alerting._evaluate import Window, burn_rate
from watchkeeper.alerting._slo import budget_remaining, burn_rules, burndown, sli, step_for


def test_budget_and_burn() -> None:
    w = Window(total=10_000, bad=50)
    assert sli(w) == pytest.approx(0.995)
    assert budget_remaining(w, 0.99) == pytest.approx(0.5)
    assert burn_rate(w, 0.99) == pytest.approx(0.5)
    assert budget_remaining(Window(100, 3), 0.99) == pytest.approx(-2.0)
    assert budget_remaining(Window(0, 0), 0.99) is None and burn_rate(Window(0, 0), 0.99) is None


def test_burndown_falls_with_bad_buckets() -> None:
    points = burndown([(2.0, 100, 1), (1.0, 100, 0), (3.0, 100, 2)], 0.99)
    assert [p.t for p in points] == [1.0, 2.0, 3.0]
    assert [round(p.budget_remaining or 0, 3) for p in points] == [1.0, 0.5, 0.0]


def test_burn_rules_follow_the_table() -> None:
    slo = Slo(id="chat-avail", objective=0.995, filters={"service": "chat", "scope": "requests"})
    rules = burn_rules(slo)
    table = [(r.window, r.short_window, r.factor, r.severity) for r in rules]
    assert table == [
        (3600.0, 300.0, 14.4, "critical"),
        (21600.0, 1800.0, 6.0, "critical"),
        (86400.0, 7200.0, 3.0, "warning"),
        (259200.0, 21600.0, 1.0, "warning"),
    ]
    assert all(r.kind == "burn_rate" and r.slo == "chat-avail" for r in rules)
    assert rules[0].labels["slo"] == "chat-avail"
    assert burn_rules(Slo(id="quiet", alerting=False)) == []


def test_steps() -> None:
    assert step_for(30 * 86400) == 21600
    assert step_for(3600) == 60
