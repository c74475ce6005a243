"""Parse the common query parameters of the HTTP API into a `SpanFilter` (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from watchkeeper.errors import ValidationError
from watchkeeper.store._protocol import SpanFilter

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


def parse_time(value: str, param: str = "start") -> int:
    """Nanoseconds from unix seconds (float), unix ms (an integer > 1e11) or ISO-8601."""
    text = value.strip()
    try:
        number: Decimal | None = Decimal(text)  # exact: a float loses nanoseconds at 1.7e18
    except InvalidOperation:
        number = None
    if number is not None and number.is_finite():
        if number > 10**11 and text.lstrip("-").isdigit():
            return int(number) * 1_000_000  # unix milliseconds
        return int(number * NS)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{param}={value!r} is not a time: use unix seconds, unix milliseconds "
            "or ISO-8601 (2025-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # naive times are UTC, not server-local
    return round(moment.timestamp() * 1_000_000) * 1000


def parse_number(value: str | None, param: str, *, low: float = 0.0) -> float | None:
    """A finite number >= `low`, or None when absent."""
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < low:
        raise ValidationError(f"{param}={value!r} must be a number >= {low:g}")
    return number


def parse_int(value: str | None, param: str, default: int, low: int = 1, high: int = 10_000) -> int:
    """An integer in [low, high], or `default` when absent."""
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"{param}={value!r} must be an integer") from None
    if not low <= number <= high:
        raise ValidationError(f"{param}={value!r} must be between {low} and {high}")
    return number


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
    """(start_ns, end_ns) from `start`/`end`, or from `range` ending now."""
    if window:
        if window not in RANGES:
            raise ValidationError(f"range={window!r} is not one of {', '.join(RANGES)}")
        end_ns = round(now_s * NS)
        return end_ns - RANGES[window] * NS, end_ns
    lo = parse_time(start, "start") if start else None
    hi = parse_time(end, "end") if end else None
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
