"""PromQL results in the Prometheus HTTP API's JSON, and its time and duration parameters."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import promql_parser as pp

from watchkeeper.query._promql_values import (
    Matrix,
    PromQLError,
    Scalar,
    Series,
    String,
    Value,
    Vector,
)

#: Prometheus refuses a range query with more points than this per series.
MAX_POINTS = 11_000


def format_value(v: float) -> str:
    """A sample value as Prometheus writes it (Go's 'f', -1; NaN, +Inf, -Inf)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(float(v))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def _ts(ms: int) -> float | int:
    return ms // 1000 if ms % 1000 == 0 else ms / 1e3


def instant_result(value: Value, at_ms: int) -> dict[str, Any]:
    """The `data` of /api/v1/query."""
    t = _ts(at_ms)
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [t, format_value(float(value.values[0]))]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [t, value.value]}
    if isinstance(value, Matrix):
        return {
            "resultType": "matrix",
            "result": [
                {
                    "metric": s.labels,
                    "values": [
                        [_ts(int(tm)), format_value(float(v))]
                        for tm, v in zip(s.t_ms, s.values, strict=True)
                        if tm > at_ms - value.range_ms
                    ],
                }
                for s in value.series
            ],
        }
    return {
        "resultType": "vector",
        "result": [
            {"metric": s.labels, "value": [t, format_value(float(s.values[0]))]}
            for s in value.series
            if s.present[0]
        ],
    }


def range_result(value: Value, steps: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The `data` of /api/v1/query_range (always a matrix)."""
    if isinstance(value, Scalar):
        value = Vector([_scalar_series(value, len(steps))])
    if not isinstance(value, Vector):
        kind = "range vector" if isinstance(value, Matrix) else "string"
        raise PromQLError(
            f"invalid expression type {kind!r} for range query, must be Scalar or instant Vector"
        )
    result: list[dict[str, Any]] = []
    for s in value.series:
        points = [
            [_ts(int(steps[i])), format_value(float(s.values[i]))]
            for i in np.flatnonzero(s.present)
        ]
        if points:
            result.append({"metric": s.labels, "values": points})
    result.sort(key=lambda r: sorted(dict(r["metric"]).items()))
    return {"resultType": "matrix", "result": result}


def _scalar_series(value: Scalar, n: int) -> Series:
    return Series({}, value.values, np.ones(n, dtype=bool))


def parse_prom_time(text: str | None, default_ms: int) -> int:
    """A Prometheus API time: unix seconds (fractions allowed) or RFC 3339; ms."""
    if text is None or text == "":
        return default_ms
    try:
        return round(float(text) * 1000)
    except (ValueError, OverflowError):
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PromQLError(f"cannot parse {text!r} to a valid timestamp") from None
    return int(parsed.timestamp() * 1000)


def parse_step(text: str | None) -> int:
    """A step or duration: seconds (fractions allowed) or a PromQL duration; ms, > 0."""
    if not text:
        raise PromQLError('cannot parse "" to a valid duration')
    try:
        ms = round(float(text) * 1000)
    except (ValueError, OverflowError):
        try:
            ms = int(pp.parse_duration(text) / timedelta(milliseconds=1))
        except ValueError:
            raise PromQLError(f"cannot parse {text!r} to a valid duration") from None
    if ms <= 0:
        raise PromQLError(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    return ms
