"""What happens to an alert event before it is notified, as pure functions.

Silences and maintenance windows mute by label matchers and time; inhibition mutes a warning
while a critical alert of the same group fires; routes choose channels; the cap holds back
notifications of a rule past N per hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from watchkeeper.alerting._config import MaintenanceWindow, Matcher, Route

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Silence:
    """An active or scheduled silence (from the config file or the API)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""
    project: str = "default"


def matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    """Whether one matcher accepts the labels (a missing label reads as "")."""
    value = labels.get(matcher.name, "")
    if matcher.op == "=":
        return value == matcher.value
    if matcher.op == "!=":
        return value != matcher.value
    found = re.fullmatch(matcher.value, value) is not None
    return found if matcher.op == "=~" else not found


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher accepts the labels."""
    return all(matches(m, labels) for m in matchers)


def silenced_by(
    silences: Iterable[Silence], labels: Mapping[str, str], now: float
) -> Silence | None:
    """The first silence active at `now` whose matchers all accept the labels."""
    for s in silences:
        if s.starts_at <= now < s.ends_at and matches_all(s.matchers, labels):
            return s
    return None


def in_maintenance(window: MaintenanceWindow, now: float) -> bool:
    """Whether `now` falls in the weekly window (which may run past midnight)."""
    dt = datetime.fromtimestamp(now, UTC)
    hour, minute = (int(x) for x in window.start.split(":"))
    for back in (0, 1, 2, 3, 4, 5, 6, 7):  # windows up to a week long may start days ago
        day = dt.replace(hour=hour, minute=minute, second=0, microsecond=0)
        start = day.timestamp() - back * 86400.0
        weekday = _DAYS[datetime.fromtimestamp(start, UTC).weekday()]
        if weekday in window.days and start <= now < start + window.duration:
            return True
    return False


def maintenance_for(
    windows: Iterable[MaintenanceWindow], labels: Mapping[str, str], now: float
) -> MaintenanceWindow | None:
    """The first maintenance window in force for these labels at `now`."""
    for w in windows:
        if matches_all(w.matchers, labels) and in_maintenance(w, now):
            return w
    return None


def inhibited(
    labels: Mapping[str, str], firing: Iterable[Mapping[str, str]], equal: Sequence[str]
) -> bool:
    """Whether a non-critical alert is muted by a firing critical one equal on `equal` labels."""
    if labels.get("severity") == "critical" or not equal:
        return False
    for other in firing:
        if other.get("severity") != "critical":
            continue
        if all(k in labels and labels[k] == other.get(k) for k in equal):
            return True
    return False


def route(
    labels: Mapping[str, str],
    explicit: Sequence[str],
    routes: Sequence[Route],
    default: Sequence[str],
) -> tuple[str, ...]:
    """Channels for an alert: the rule's own, else matching routes, else the default."""
    if explicit:
        return tuple(explicit)
    chosen: list[str] = []
    for r in routes:
        if matches_all(r.matchers, labels):
            chosen.extend(c for c in r.channels if c not in chosen)
            if not r.continue_:
                break
    return tuple(chosen) if chosen else tuple(default)


def under_cap(sent_at: Sequence[float], now: float, cap: int) -> bool:
    """Whether one more notification fits the rule's cap of `cap` in the last hour."""
    return sum(1 for t in sent_at if now - t < HOUR_S) < cap


def recent(sent_at: Sequence[float], now: float) -> list[float]:
    """The send times still inside the last hour."""
    return [t for t in sent_at if now - t < HOUR_S]
