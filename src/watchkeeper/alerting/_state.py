"""The alert state machine, pure: inactive → pending → firing → resolved.

`transition(state, observation, now, timing) -> (state, events)`. A breach starts `pending`;
after `for` it fires (at once when `for` is 0). A firing alert resolves only once it has not
breached for `keep_firing_for` (hysteresis against flapping). While firing, a `repeat` event
comes every `repeat_interval`. `observation=None` means the group was not seen this cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from watchkeeper.alerting._evaluate import Observation

Status = Literal["inactive", "pending", "firing", "resolved"]
EventKind = Literal["firing", "resolved", "repeat"]


@dataclass(frozen=True, slots=True)
class Timing:
    """The durations the state machine reads from a rule."""

    for_s: float = 0.0
    keep_firing_s: float = 0.0
    repeat_s: float = 0.0  # 0: never repeat


@dataclass(frozen=True, slots=True)
class AlertState:
    """What is known of one alert (one rule, one group) between evaluations."""

    fingerprint: str
    rule_id: str
    project: str
    labels: Mapping[str, str] = field(default_factory=dict)
    status: Status = "inactive"
    pending_since: float | None = None
    firing_since: float | None = None
    last_breach_at: float | None = None
    resolved_at: float | None = None
    last_notified_at: float | None = None
    value: float | None = None
    threshold: float | None = None
    trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """A change worth notifying: the alert fired, resolved, or is still firing (repeat)."""

    kind: EventKind
    state: AlertState
    at: float


def _observe(state: AlertState, obs: Observation | None) -> AlertState:
    if obs is None:
        return state
    return replace(state, value=obs.value, threshold=obs.threshold)


def _fire(state: AlertState, now: float) -> tuple[AlertState, list[Event]]:
    fired = replace(
        state,
        status="firing",
        firing_since=now,
        last_breach_at=now,
        resolved_at=None,
        last_notified_at=now,
    )
    return fired, [Event("firing", fired, now)]


def _while_firing(
    state: AlertState, breaching: bool, now: float, t: Timing
) -> tuple[AlertState, list[Event]]:
    if breaching:
        state = replace(state, last_breach_at=now)
    elif now - (state.last_breach_at or now) >= t.keep_firing_s:
        done = replace(state, status="resolved", resolved_at=now, pending_since=None)
        return done, [Event("resolved", done, now)]
    last = state.last_notified_at or state.firing_since or now
    if t.repeat_s > 0 and now - last >= t.repeat_s:
        state = replace(state, last_notified_at=now)
        return state, [Event("repeat", state, now)]
    return state, []


def transition(
    state: AlertState, obs: Observation | None, now: float, timing: Timing
) -> tuple[AlertState, list[Event]]:
    """The next state of one alert after one evaluation, and the events to notify."""
    state = _observe(state, obs)
    breaching = obs is not None and obs.breaching
    if state.status == "firing":
        return _while_firing(state, breaching, now, timing)
    if not breaching:
        if state.status == "pending":
            return replace(state, status="inactive", pending_since=None), []
        return state, []
    since = state.pending_since if state.status == "pending" else now
    assert since is not None
    if now - since >= timing.for_s:
        return _fire(replace(state, pending_since=since), now)
    return replace(state, status="pending", pending_since=since, last_breach_at=now), []
