"""Silences, maintenance windows, inhibition, routes and the hourly cap: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchkeeper.alerting import Matcher, Route
from watchkeeper.alerting._config import MaintenanceWindow
from watchkeeper.alerting._policy import (
    Silence,
    in_maintenance,
    inhibited,
    matches,
    route,
    silenced_by,
    under_cap,
)


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


LABELS = {"service": "chat", "model": "gpt-4o", "severity": "warning"}


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [("service=chat", True), ("service=search", False), ("service!=search", True),
     ("model=~gpt-4.*", True), ("model=~gpt", False), ("model!~claude.*", True),
     ("team=", True), ("team!=", False)],
)  # fmt: skip
def test_matchers(matcher: str, expected: bool) -> None:
    assert matches(Matcher.model_validate(matcher), LABELS) is expected


def test_silence_applies_only_inside_its_window_and_to_matching_labels() -> None:
    s = Silence("s1", (Matcher.model_validate("service=chat"),), at("2026-03-01T10:00"),
                at("2026-03-01T11:00"))  # fmt: skip
    assert silenced_by([s], LABELS, at("2026-03-01T10:30")) is s
    assert silenced_by([s], LABELS, at("2026-03-01T09:59")) is None
    assert silenced_by([s], LABELS, at("2026-03-01T11:00")) is None
    assert silenced_by([s], {**LABELS, "service": "other"}, at("2026-03-01T10:30")) is None


@pytest.mark.parametrize(
    ("when", "expected"),
    [("2026-03-01T02:30", True),  # Sunday inside
     ("2026-03-01T01:59", False),
     ("2026-03-01T03:00", False),
     ("2026-03-02T02:30", False),  # Monday: not a listed day
     ("2026-03-07T23:30", True),  # Saturday night window runs past midnight
     ("2026-03-08T00:30", True),
     ("2026-03-08T01:00", False)],
)  # fmt: skip
def test_maintenance_windows(when: str, expected: bool) -> None:
    sunday = MaintenanceWindow(days=("sun",), start="02:00", duration=3600)
    saturday = MaintenanceWindow(days=("sat",), start="23:00", duration=7200)
    now = at(when)
    assert (in_maintenance(sunday, now) or in_maintenance(saturday, now)) is expected


def test_critical_inhibits_warning_of_same_service_only() -> None:
    critical = [{"service": "chat", "severity": "critical"}]
    assert inhibited(LABELS, critical, ["service"])
    assert not inhibited({**LABELS, "service": "search"}, critical, ["service"])
    assert not inhibited({**LABELS, "severity": "critical"}, critical, ["service"])
    assert not inhibited({"severity": "warning"}, critical, ["service"])  # no service label


def test_routes() -> None:
    routes = [
        Route.model_validate({"matchers": ["severity=critical"], "channels": ["pager"],
                              "continue": True}),
        Route.model_validate({"matchers": ["service=~chat|search"], "channels": ["slack"]}),
        Route.model_validate({"channels": ["email"]}),
    ]  # fmt: skip
    assert route({**LABELS, "severity": "critical"}, (), routes, ["all"]) == ("pager", "slack")
    assert route(LABELS, (), routes, ["all"]) == ("slack",)
    assert route({"service": "x"}, (), routes, ["all"]) == ("email",)
    assert route({"service": "x"}, ("own",), routes, ["all"]) == ("own",)
    assert route({"service": "x"}, (), [], ["a", "b"]) == ("a", "b")


def test_cap_counts_the_last_hour() -> None:
    sent = [0.0, 100.0, 200.0]
    assert not under_cap(sent, 300.0, 3)
    assert under_cap(sent, 3600.0, 3)  # the first one left the hour
