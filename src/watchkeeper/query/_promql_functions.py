"""PromQL functions: over range vectors (rate, increase, *_over_time...), element-wise over
instant vectors (abs, round, clamp...), and `histogram_quantile`.

Each follows Prometheus's own definition (promql/functions.go), including the
extrapolation of `rate`/`increase`/`delta` to the window's edges and counter resets.
A range [t - range, t] is open on the left, as in Prometheus 3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from watchkeeper.query._promql_values import (
    Floats,
    Mask,
    Matrix,
    PromQLError,
    Scalar,
    Series,
    String,
    Value,
    Vector,
    key,
    without_name,
)
from watchkeeper.query._promql_windows import extrapolated, extrapolated_matrix

#: A range function: (times ms, values, window start, window end, args) -> value or None.
_RangeFn = Callable[[Any, Floats, int, int, list[float]], float | None]


#: Range functions computed over all steps at once: name -> (counter, rate).
_VECTORIZED = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}


def _instant(t: Any, v: Floats, counter: bool, rate: bool) -> float | None:
    if len(v) < 2:
        return None
    last, prev = float(v[-1]), float(v[-2])
    delta = last if counter and last < prev else last - prev
    if not rate:
        return delta
    interval = (t[-1] - t[-2]) / 1e3
    return None if interval == 0 else delta / interval


def _regression(t: Any, v: Floats, at_ms: int) -> tuple[float, float] | None:
    """Least-squares slope and the intercept at `at_ms` (Prometheus's linearRegression)."""
    if len(v) < 2:
        return None
    x = (np.asarray(t, dtype=np.float64) - at_ms) / 1e3
    if np.all(v == v[0]):
        return 0.0, float(v[0])
    n = len(v)
    sx, sy = float(x.sum()), float(v.sum())
    cov = float((x * v).sum()) - sx * sy / n
    var = float((x * x).sum()) - sx * sx / n
    if var == 0:
        return None
    slope = cov / var
    return slope, sy / n - slope * sx / n


def _changes(v: Floats) -> float:
    a, b = v[:-1], v[1:]
    return float(np.sum((a != b) & ~(np.isnan(a) & np.isnan(b))))


def _quantile(q: float, values: Floats) -> float:
    if math.isnan(q) or not len(values):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    return float(np.quantile(np.sort(values), q))


def _nan_reduce(fn: Callable[[Floats], Any], v: Floats) -> float:
    finite = v[~np.isnan(v)]
    return float(fn(finite)) if len(finite) else math.nan


RANGE_FUNCTIONS: dict[str, _RangeFn] = {
    "rate": lambda t, v, s, e, a: extrapolated(t, v, s, e, True, True),
    "increase": lambda t, v, s, e, a: extrapolated(t, v, s, e, True, False),
    "delta": lambda t, v, s, e, a: extrapolated(t, v, s, e, False, False),
    "irate": lambda t, v, s, e, a: _instant(t, v, True, True),
    "idelta": lambda t, v, s, e, a: _instant(t, v, False, False),
    "sum_over_time": lambda t, v, s, e, a: float(np.sum(v)),
    "count_over_time": lambda t, v, s, e, a: float(len(v)),
    "avg_over_time": lambda t, v, s, e, a: float(np.mean(v)),
    "min_over_time": lambda t, v, s, e, a: _nan_reduce(np.min, v),
    "max_over_time": lambda t, v, s, e, a: _nan_reduce(np.max, v),
    "last_over_time": lambda t, v, s, e, a: float(v[-1]),
    "present_over_time": lambda t, v, s, e, a: 1.0,
    "stddev_over_time": lambda t, v, s, e, a: float(np.std(v)),
    "stdvar_over_time": lambda t, v, s, e, a: float(np.var(v)),
    "quantile_over_time": lambda t, v, s, e, a: _quantile(a[0], v),
    "changes": lambda t, v, s, e, a: _changes(v),
    "resets": lambda t, v, s, e, a: float(np.sum(v[1:] < v[:-1])),
    "deriv": lambda t, v, s, e, a: (r := _regression(t, v, e)) and r[0],
    "predict_linear": lambda t, v, s, e, a: (r := _regression(t, v, e)) and r[1] + r[0] * a[0],
}
#: Range functions whose result keeps the metric name.
_KEEP_NAME = frozenset({"last_over_time"})
#: The position of the range-vector argument (the others are scalars).
RANGE_ARG = {"quantile_over_time": 1}


def apply_range(name: str, matrix: Matrix, args: list[Floats], steps: int) -> Vector:
    """A range function over every step's window."""
    if name in _VECTORIZED:  # a loop per step and series took minutes over a day of 5k series
        series = extrapolated_matrix(matrix, *_VECTORIZED[name])
        if len({labels.get("__name__") for labels in matrix.labels}) <= 1:
            return Vector(series)  # distinct series of one metric stay distinct without it
        return _merge_same(series)
    fn = RANGE_FUNCTIONS[name]
    out = []
    for rs in matrix.series:
        values = np.full(steps, np.nan)
        present = np.zeros(steps, dtype=bool)
        starts = matrix.ends - matrix.range_ms
        lo = np.searchsorted(rs.t_ms, starts, side="right")
        hi = np.searchsorted(rs.t_ms, matrix.ends, side="right")
        for i in range(steps):
            if hi[i] <= lo[i]:
                continue
            a, b = int(lo[i]), int(hi[i])
            step_args = [float(x[i]) for x in args]
            r = fn(rs.t_ms[a:b], rs.values[a:b], int(starts[i]), int(matrix.ends[i]), step_args)
            if r is not None:
                values[i], present[i] = r, True
        if present.any():
            labels = rs.labels if name in _KEEP_NAME else without_name(rs.labels)
            out.append(Series(labels, values, present))
    return _merge_same(out)


def _merge_same(series: list[Series]) -> Vector:
    """Series whose labels became equal (names dropped) must not overlap in time."""
    seen: dict[tuple[tuple[str, str], ...], Series] = {}
    for s in series:
        k = key(s.labels)
        if k not in seen:
            seen[k] = s
            continue
        other = seen[k]
        if np.any(other.present & s.present):
            raise PromQLError(
                "vector cannot contain metrics with the same labelset", kind="execution"
            )
        other.values = np.where(s.present, s.values, other.values)
        other.present = other.present | s.present
    return Vector(list(seen.values()))


def _round(v: Floats, to: Floats) -> Floats:
    return np.floor(v * (1 / to) + 0.5) / (1 / to)


_ELEMENTWISE: dict[str, Callable[..., Floats]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": np.sign,
    "round": lambda v, to=None: _round(v, to if to is not None else np.ones_like(v)),
    "clamp": lambda v, lo, hi: np.where(lo > hi, np.nan, np.minimum(np.maximum(v, lo), hi)),
    "clamp_min": lambda v, lo: np.maximum(v, lo),
    "clamp_max": lambda v, hi: np.minimum(v, hi),
}


def apply_elementwise(name: str, vector: Vector, args: list[Floats]) -> Vector:
    """An element-wise function (the metric name is dropped)."""
    fn = _ELEMENTWISE[name]
    out = []
    with np.errstate(all="ignore"):
        for s in vector.series:
            out.append(Series(without_name(s.labels), fn(s.values, *args), s.present.copy()))
    if name == "clamp":  # min > max: Prometheus returns nothing at that step
        for s in out:
            s.present &= args[0] <= args[1]
    return _merge_same([s for s in out if s.present.any()])


def is_elementwise(name: str) -> bool:
    """Whether `name` is an element-wise function of an instant vector."""
    return name in _ELEMENTWISE


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's bucketQuantile over (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:  # the same bound twice: counts added
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    for i in range(1, len(merged)):  # counts must not fall
        merged[i][1] = max(merged[i][1], merged[i - 1][1])
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    with np.errstate(all="ignore"):  # 0 / 0 is NaN, as in Go
        return start + (end - start) * float(np.float64(rank) / count)


def histogram_quantile(q: Floats, vector: Vector, steps: int) -> Vector:
    """`histogram_quantile(φ, buckets)`: one series per label set without `le`."""
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, Series]]] = {}
    for s in vector.series:
        le = s.labels.get("le")
        if le is None:
            continue
        try:
            bound = float(le.replace("Inf", "inf"))
        except ValueError:
            continue
        labels = {k: v for k, v in without_name(s.labels).items() if k != "le"}
        groups.setdefault(key(labels), []).append((bound, s))
    out = []
    for k, members in groups.items():
        values = np.full(steps, np.nan)
        present = np.zeros(steps, dtype=bool)
        for _, s in members:
            present |= s.present
        whole = _whole_steps(members, present)
        if whole.any():
            values[whole] = _bucket_quantiles(q[whole], members, whole)
        for i in np.flatnonzero(present & ~whole):  # a bucket missing, or a count NaN
            buckets = [(b, float(s.values[i])) for b, s in members if s.present[i]]
            values[i] = bucket_quantile(float(q[i]), buckets)
        out.append(Series(dict(k), values, present))
    return Vector(out)


def _whole_steps(members: list[tuple[float, Series]], present: Mask) -> Mask:
    """The steps `_bucket_quantiles` computes for a group: every bucket present with a
    count that is not NaN, the bounds distinct (a bound twice is added up in order of
    count, step by step: left to `bucket_quantile`)."""
    bounds = [b for b, _ in members]
    if len(set(bounds)) < len(bounds):
        return np.zeros_like(present)
    whole = present.copy()
    for _, s in members:
        whole &= s.present & ~np.isnan(s.values)
    return whole


def _bucket_quantiles(q: Floats, members: list[tuple[float, Series]], at: Mask) -> Floats:
    """`bucket_quantile` at many steps at once (steps `at`, each bucket present, distinct
    bounds, no NaN count): the same arithmetic, a column per step."""
    members = sorted(members, key=lambda m: m[0])
    bounds = np.array([b for b, _ in members])
    n = len(bounds)
    out = np.full(len(q), math.nan)
    if n >= 2 and bounds[-1] == math.inf:
        out = _interpolated(q, bounds, members, at)
    out = np.where(q < 0, -math.inf, np.where(q > 1, math.inf, out))
    return np.where(np.isnan(q), math.nan, out)


def _interpolated(
    q: Floats, bounds: Floats, members: list[tuple[float, Series]], at: Mask
) -> Floats:
    """The quantile within the bucket it falls in (`bucket_quantile`'s last part)."""
    n = len(bounds)
    counts = np.maximum.accumulate(np.vstack([s.values[at] for _, s in members]), axis=0)
    observations = counts[-1]
    rank = q * observations
    reached = counts[:-1] >= rank
    b = np.where(reached.any(axis=0), np.argmax(reached, axis=0), n - 1)
    cols = np.arange(len(q))
    below = np.where(b > 0, counts[np.maximum(b - 1, 0), cols], 0.0)
    start = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
    end = bounds[np.minimum(b, n - 1)]
    with np.errstate(all="ignore"):
        out = start + (end - start) * ((rank - below) / (counts[b, cols] - below))
    out = np.where(b == n - 1, bounds[n - 2], out)
    out = np.where((b == 0) & (bounds[0] <= 0), bounds[0], out)
    return np.where((observations == 0) | np.isnan(observations), math.nan, out)


def label_replace(vector: Vector, args: list[Value]) -> Vector:
    """`label_replace(v, dst, replacement, src, regex)`."""
    dst, replacement, src, regex = (_string(a) for a in args)
    try:
        pattern = re.compile(f"(?s:{regex})")
    except re.error as exc:
        raise PromQLError(f'invalid regular expression in label_replace(): "{regex}"') from exc
    template = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", replacement)
    out = []
    for s in vector.series:
        m = pattern.fullmatch(s.labels.get(src, ""))
        labels = dict(s.labels)
        if m is not None:
            value = m.expand(template)
            if value:
                labels[dst] = value
            else:
                labels.pop(dst, None)
        out.append(Series(labels, s.values, s.present))
    return _merge_same(out)


def _string(v: Value) -> str:
    if not isinstance(v, String):
        raise PromQLError("expected a string argument")
    return v.value


def scalar_of(vector: Vector, steps: int) -> Scalar:
    """`scalar(v)`: the one present series' value, else NaN."""
    values = np.full(steps, np.nan)
    for i in range(steps):
        present = [s for s in vector.series if s.present[i]]
        if len(present) == 1:
            values[i] = present[0].values[i]
    return Scalar(values)
