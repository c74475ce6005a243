"""The alert state machine, driven by tables of (time, breaching) with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchkeeper.alerting import AlertState, Observation, Timing, transition


def t(hms: str) -> float:
    """Unix seconds of a time of day on a fixed date."""
    return datetime.fromisoformat(f"2026-03-01T{hms}+00:00").astimezone(UTC).timestamp()


def obs(breaching: bool | None, value: float = 1.0) -> Observation | None:
    if breaching is None:
        return None
    return Observation(None, {}, value if breaching else 0.0, 0.5, breaching, 100)


def run(steps: list[tuple[str, bool | None]], timing: Timing) -> list[tuple[str, str, list[str]]]:
    state = AlertState("fp", "rule", "default", {"alertname": "r"})
    out = []
    for hms, breaching in steps:
        state, events = transition(state, obs(breaching), t(hms), timing)
        out.append((hms, state.status, [e.kind for e in events]))
    return out


CASES = {
    "fires at once without for": (
        Timing(),
        [("10:00:00", True), ("10:00:05", True), ("10:00:10", False)],
        [
            ("10:00:00", "firing", ["firing"]),
            ("10:00:05", "firing", []),
            ("10:00:10", "resolved", ["resolved"]),
        ],
    ),
    "pending until for has passed": (
        Timing(for_s=60),
        [("10:00:00", True), ("10:00:30", True), ("10:00:59", True), ("10:01:00", True)],
        [
            ("10:00:00", "pending", []),
            ("10:00:30", "pending", []),
            ("10:00:59", "pending", []),
            ("10:01:00", "firing", ["firing"]),
        ],
    ),
    "a gap while pending starts over": (
        Timing(for_s=60),
        [
            ("10:00:00", True),
            ("10:00:40", False),
            ("10:00:50", True),
            ("10:01:20", True),
            ("10:01:50", True),
        ],
        [
            ("10:00:00", "pending", []),
            ("10:00:40", "inactive", []),
            ("10:00:50", "pending", []),
            ("10:01:20", "pending", []),
            ("10:01:50", "firing", ["firing"]),
        ],
    ),
    "keep_firing_for holds through a short dip": (
        Timing(keep_firing_s=30),
        [
            ("10:00:00", True),
            ("10:00:10", False),
            ("10:00:20", True),
            ("10:00:30", False),
            ("10:00:49", False),
            ("10:00:50", False),
        ],
        [
            ("10:00:00", "firing", ["firing"]),
            ("10:00:10", "firing", []),
            ("10:00:20", "firing", []),
            ("10:00:30", "firing", []),
            ("10:00:49", "firing", []),
            ("10:00:50", "resolved", ["resolved"]),
        ],
    ),
    "repeat while firing": (
        Timing(repeat_s=3600),
        [
            ("10:00:00", True),
            ("10:59:59", True),
            ("11:00:00", True),
            ("11:30:00", True),
            ("12:00:00", True),
        ],
        [
            ("10:00:00", "firing", ["firing"]),
            ("10:59:59", "firing", []),
            ("11:00:00", "firing", ["repeat"]),
            ("11:30:00", "firing", []),
            ("12:00:00", "firing", ["repeat"]),
        ],
    ),
    "group not seen resolves a firing alert": (
        Timing(),
        [("10:00:00", True), ("10:00:05", None)],
        [("10:00:00", "firing", ["firing"]), ("10:00:05", "resolved", ["resolved"])],
    ),
    "fires again after resolving": (
        Timing(for_s=10),
        [
            ("10:00:00", True),
            ("10:00:10", True),
            ("10:00:20", False),
            ("10:00:30", True),
            ("10:00:40", True),
        ],
        [
            ("10:00:00", "pending", []),
            ("10:00:10", "firing", ["firing"]),
            ("10:00:20", "resolved", ["resolved"]),
            ("10:00:30", "pending", []),
            ("10:00:40", "firing", ["firing"]),
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transitions(name: str) -> None:
    timing, steps, expected = CASES[name]
    assert run(steps, timing) == expected


def test_firing_records_times_and_value() -> None:
    state = AlertState("fp", "rule", "default")
    state, _ = transition(state, obs(True, 0.3), t("10:00:00"), Timing(for_s=5))
    state, events = transition(state, obs(True, 0.4), t("10:00:05"), Timing(for_s=5))
    assert events[0].state is state
    assert state.pending_since == t("10:00:00")
    assert state.firing_since == t("10:00:05")
    assert state.value == 0.4
    state, events = transition(state, obs(False), t("10:00:10"), Timing(for_s=5))
    assert state.resolved_at == t("10:00:10")
    assert events[0].state.firing_since == t("10:00:05")
