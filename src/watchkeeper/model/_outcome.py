"""The outcome of a span or request, as dashboards and alerts count it."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What happened to a call: the five values DESIGN.md fixes."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    FALLBACK = "fallback"
    REJECTED = "rejected"


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
