"""Parse the common query parameters of the HTTP API into a `SpanFilter` (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from watchkeeper.errors import ValidationError
from watchkeeper.model import MAX_TIME_NS
from watchkeeper.store import SpanFilter

NS = 1_000_000_000
RANGES: dict[str, int] = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 86_400,
    "7d": 7 * 86_400,
    "30d": 30 * 86_400,
}
SCOPES = ("requests", "spans", "llm")
#: query parameter -> SpanFilter field, for the repeatable/comma-separated ones
LISTS: dict[str, str] = {
    "service": "services",
    "environment": "environments",
    "operation": "operations",
    "provider": "providers",
    "model": "models",
    "outcome": "outcomes",
    "route": "routes",
    "agent": "agents",
    "feature": "features",
}
EXACT: dict[str, str] = {
    "user": "user_id",
    "session": "session_id",
    "trace_id": "trace_id",
    "name": "name",
}
MAX_VALUES = 100  # values of one list parameter


#: Times are int64 nanoseconds in the store: the last one is 2262-04-11T23:47:16Z.
MAX_TIME_MS = MAX_TIME_NS // 1_000_000  # whole unix milliseconds
#: A duration (ms) any span can have: the whole int64 nanosecond range.
MAX_DURATION_MS = MAX_TIME_NS // 1_000_000
_SHOWN = 40  # characters of a bad value repeated in an error message


def shown(value: str) -> str:
    """A value as an error message repeats it: quoted, and cut when long."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def _bad_time(value: str, param: str) -> ValidationError:
    return ValidationError(
        f"{param}={shown(value)} is not a time between 1970-01-01 and 2262-04-11: use unix "
        f"milliseconds (0 to {MAX_TIME_MS}) or ISO-8601 (2025-01-31T12:00:00Z)"
    )


def parse_time(value: str, param: str = "start") -> int:
    """Nanoseconds from unix milliseconds (the API's unit; a fraction is kept) or ISO-8601.

    Only times the store can hold (1970-01-01 to 2262-04-11) are accepted.
    """
    text = value.strip()
    try:
        number: Decimal | None = Decimal(text)  # exact: a float loses nanoseconds at 1.7e18
    except InvalidOperation:
        number = None
    if number is not None and number.is_finite():
        scale = 1_000_000
        if not 0 <= number <= MAX_TIME_MS:  # before scaling: 1e999999 too
            raise _bad_time(value, param)
        return int(number * scale)
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # naive times are UTC, not server-local
        ns = round(moment.timestamp() * 1_000_000) * 1000
    except (ValueError, OverflowError):
        raise _bad_time(value, param) from None
    if not 0 <= ns <= MAX_TIME_NS:
        raise _bad_time(value, param)
    return ns


def parse_number(
    value: str | None, param: str, *, low: float = 0.0, high: float = MAX_DURATION_MS
) -> float | None:
    """A finite number in [low, high], or None when absent."""
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not low <= number <= high:  # NaN too
        raise ValidationError(
            f"{param}={shown(value)} must be a number between {low:g} and {high:.0f}"
        )
    return number


def parse_int(value: str | None, param: str, default: int, low: int = 1, high: int = 10_000) -> int:
    """An integer in [low, high], or `default` when absent."""
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    number = int(text) if len(text) <= _SHOWN and _is_integer(text) else None
    if number is None or not low <= number <= high:
        raise ValidationError(f"{param}={shown(value)} must be an integer between {low} and {high}")
    return number


def _is_integer(text: str) -> bool:
    return text.removeprefix("-").removeprefix("+").isdecimal()


def parse_bool(value: str | None, param: str, default: bool) -> bool:
    """true/false (also 1/0, yes/no), or `default` when absent."""
    if value is None or value.strip() == "":
        return default
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationError(f"{param}={value!r} must be true or false")


def split_values(values: Sequence[str], param: str) -> tuple[str, ...]:
    """Repeated and comma-separated values, stripped, empty ones dropped, order kept."""
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    if len(out) > MAX_VALUES:
        raise ValidationError(f"{param} takes at most {MAX_VALUES} values (got {len(out)})")
    return tuple(dict.fromkeys(out))


def parse_range(
    start: str | None, end: str | None, window: str | None, now_s: float
) -> tuple[int | None, int | None]:
    """(start_ns, end_ns) from `start`/`end`, or from `range` ending now (which wins; a
    `start` or `end` given with it must still be a time)."""
    lo = parse_time(start, "start") if start else None
    hi = parse_time(end, "end") if end else None
    if window:
        if window not in RANGES:
            raise ValidationError(f"range={window!r} is not one of {', '.join(RANGES)}")
        end_ns = round(now_s * NS)
        return end_ns - RANGES[window] * NS, end_ns
    if lo is not None and hi is not None and lo >= hi:
        raise ValidationError("start must be before end")
    return lo, hi


def parse_filter(
    project: str,
    params: Mapping[str, Sequence[str]],
    now_s: float,
    scope: str | None = None,
) -> SpanFilter:
    """A `SpanFilter` from query parameters (name -> every value given); `scope` overrides."""

    def one(name: str) -> str | None:
        values = params.get(name) or ()
        return values[-1] if values else None

    scope = scope or one("scope") or "spans"
    if scope not in SCOPES:
        raise ValidationError(f"scope={scope!r} is not one of {', '.join(SCOPES)}")
    start_ns, end_ns = parse_range(one("start"), one("end"), one("range"), now_s)
    lists = {field: split_values(params.get(p) or (), p) for p, field in LISTS.items()}
    exact = {field: one(p) or None for p, field in EXACT.items()}
    text = one("q")
    if text is not None and len(text) > 500:
        raise ValidationError("q is limited to 500 characters")
    return SpanFilter(
        project=project,
        start_ns=start_ns,
        end_ns=end_ns,
        scope=scope,  # type: ignore[arg-type]  # checked against SCOPES above
        min_duration_ms=parse_number(one("min_duration_ms"), "min_duration_ms"),
        max_duration_ms=parse_number(one("max_duration_ms"), "max_duration_ms"),
        text=text or None,
        **lists,  # type: ignore[arg-type]
        **exact,  # type: ignore[arg-type]
    )
