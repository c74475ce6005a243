"""PromQL operators: aggregations (`sum by (...)`, `topk`...), binary operators between
scalars and vectors with Prometheus's vector matching (`on`, `ignoring`, `group_left`,
`group_right`, `bool`), and the set operators `and`, `or`, `unless`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from watchkeeper.query._promql_functions import _merge_same
from watchkeeper.query._promql_values import (
    Floats,
    Mask,
    PromQLError,
    Scalar,
    Series,
    Vector,
    key,
    without_name,
)

ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,  # Go's math.Mod: the sign of the dividend
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
SET_OPERATORS = frozenset({"and", "or", "unless"})
_Key = tuple[tuple[str, str], ...]


# --- aggregation --------------------------------------------------------------------------


def _group_labels(labels: dict[str, str], names: Sequence[str], without: bool) -> dict[str, str]:
    if without:
        drop = set(names) | {"__name__"}
        return {k: v for k, v in labels.items() if k not in drop}
    return {k: labels[k] for k in names if labels.get(k)}


def _stack(members: list[Series]) -> tuple[Floats, Mask]:
    return np.vstack([s.values for s in members]), np.vstack([s.present for s in members])


def _reduce(op: str, m: Floats, p: Mask, param: Floats | None) -> Floats:
    with np.errstate(all="ignore"):
        count: Floats = p.sum(axis=0).astype(np.float64)
        total: Floats = np.where(p, m, 0.0).sum(axis=0)
        out: Floats
        if op == "sum":
            out = total
        elif op == "count":
            out = count
        elif op == "group":
            out = np.ones(m.shape[1])
        elif op == "avg":
            out = total / count
        elif op in ("min", "max"):
            fn = np.fmin if op == "min" else np.fmax
            out = fn.reduce(np.where(p, m, np.nan), axis=0)
        elif op in ("stddev", "stdvar"):
            var: Floats = np.where(p, (m - total / count) ** 2, 0.0).sum(axis=0) / count
            out = np.sqrt(var) if op == "stddev" else var
        elif op == "quantile" and param is not None:
            out = np.array(
                [
                    _quantile(float(param[i]), m[p[:, i], i]) if p[:, i].any() else math.nan
                    for i in range(m.shape[1])
                ]
            )
        else:
            raise PromQLError(f"aggregation {op}() is not supported yet")
    return out


def _quantile(q: float, values: Floats) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    return float(np.quantile(values, q))


def aggregate(
    op: str, vector: Vector, names: Sequence[str], without: bool, param: Floats | None
) -> Vector:
    """An aggregation over groups of series (by or without labels)."""
    groups: dict[_Key, list[Series]] = {}
    labels_of: dict[_Key, dict[str, str]] = {}
    by = sorted(set(names))
    for s in vector.series:
        if without:
            k = key(_group_labels(s.labels, names, without))
        else:  # key() of the group's labels, without a dict and a sort per series
            k = tuple((n, v) for n in by if (v := s.labels.get(n)))
        members = groups.get(k)
        if members is None:
            groups[k] = [s]
            labels_of[k] = _group_labels(s.labels, names, without)
        else:
            members.append(s)
    if op in ("topk", "bottomk"):
        assert param is not None
        return Vector([s for members in groups.values() for s in _top(op, members, param)])
    out = []
    for k, members in groups.items():
        m, p = _stack(members)
        present: Mask = np.any(p, axis=0)
        out.append(Series(labels_of[k], _reduce(op, m, p, param), present))
    return Vector(out)


def _top(op: str, members: list[Series], k: Floats) -> list[Series]:
    """The k highest (topk) or lowest (bottomk) series of a group at each step; NaN last."""
    m, p = _stack(members)
    fill = -np.inf if op == "topk" else np.inf
    score = np.where(p & ~np.isnan(m), m, fill)
    if op == "topk":
        score = -score
    order = np.argsort(score, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(len(members))[:, None], axis=0)
    keep = p & (rank < np.maximum(k.astype(np.int64), 0)[None, :])
    return [Series(s.labels, s.values, keep[i]) for i, s in enumerate(members) if keep[i].any()]


# --- binary operators ---------------------------------------------------------------------


def scalar_binary(op: str, lhs: Floats, rhs: Floats, return_bool: bool) -> Scalar:
    """scalar op scalar (a comparison needs `bool`, which the parser enforces)."""
    with np.errstate(all="ignore"):
        if op in COMPARISON:
            return Scalar(COMPARISON[op](lhs, rhs).astype(np.float64))
        return Scalar(ARITHMETIC[op](lhs, rhs))


def vector_scalar(op: str, vector: Vector, scalar: Floats, swap: bool, return_bool: bool) -> Vector:
    """vector op scalar, or scalar op vector when `swap`."""
    out = []
    with np.errstate(all="ignore"):
        for s in vector.series:
            lv, rv = (scalar, s.values) if swap else (s.values, scalar)
            present = s.present.copy()
            if op in COMPARISON:
                keep = COMPARISON[op](lv, rv)
                value = s.values  # the vector's value, whichever side it is on
                if return_bool:
                    value = keep.astype(np.float64)
                else:
                    present &= keep
            else:
                value = ARITHMETIC[op](lv, rv)
            named = op in COMPARISON and not return_bool
            out.append(Series(s.labels if named else without_name(s.labels), value, present))
    return _merge_same([s for s in out if s.present.any()])


def _signature(labels: dict[str, str], on: bool, names: Sequence[str]) -> _Key:
    if on:
        return tuple((n, labels.get(n, "")) for n in sorted(set(names)))
    drop = set(names) | {"__name__"}
    return key({k: v for k, v in labels.items() if k not in drop})


def _by_signature(series: list[Series], on: bool, names: Sequence[str]) -> dict[_Key, list[Series]]:
    out: dict[_Key, list[Series]] = {}
    for s in series:
        out.setdefault(_signature(s.labels, on, names), []).append(s)
    return out


def _any_present(members: list[Series], steps: int) -> Mask:
    present = np.zeros(steps, dtype=bool)
    for s in members:
        present |= s.present
    return present


def set_operation(
    op: str, lhs: Vector, rhs: Vector, on: bool, names: Sequence[str], steps: int
) -> Vector:
    """`and`, `or`, `unless` (labels kept as they are)."""
    right = {k: _any_present(m, steps) for k, m in _by_signature(rhs.series, on, names).items()}
    none = np.zeros(steps, dtype=bool)
    if op in ("and", "unless"):
        out = []
        for s in lhs.series:
            other = right.get(_signature(s.labels, on, names), none)
            present = s.present & (other if op == "and" else ~other)
            if present.any():
                out.append(Series(s.labels, s.values, present))
        return Vector(out)
    left = {k: _any_present(m, steps) for k, m in _by_signature(lhs.series, on, names).items()}
    out = list(lhs.series)
    for s in rhs.series:
        present = s.present & ~left.get(_signature(s.labels, on, names), none)
        if present.any():
            out.append(Series(s.labels, s.values, present))
    return Vector(out)


def _result_labels(
    many: dict[str, str],
    one: dict[str, str],
    op: str,
    card: str,
    on: bool,
    names: Sequence[str],
    include: Sequence[str],
    return_bool: bool,
) -> dict[str, str]:
    """Prometheus's resultMetric."""
    labels = dict(many)
    if op in ARITHMETIC or return_bool:
        labels.pop("__name__", None)
    if card == "one-to-one":
        if on:
            labels = {k: v for k, v in labels.items() if k in names}
        else:
            labels = {k: v for k, v in labels.items() if k not in names}
    for name in include:
        if one.get(name):
            labels[name] = one[name]
        else:
            labels.pop(name, None)
    return labels


def vector_binary(
    op: str,
    lhs: Vector,
    rhs: Vector,
    *,
    card: str,
    on: bool,
    names: Sequence[str],
    include: Sequence[str],
    return_bool: bool,
    steps: int,
) -> Vector:
    """vector op vector with one-to-one, many-to-one or one-to-many matching."""
    swapped = card == "one-to-many"
    many_side, one_side = (rhs, lhs) if swapped else (lhs, rhs)
    ones = _by_signature(one_side.series, on, names)
    manys = _by_signature(many_side.series, on, names)
    out = []
    with np.errstate(all="ignore"):
        for sig, members in manys.items():
            candidates = ones.get(sig)
            if not candidates:
                continue
            _check_unique(candidates, members, card, steps)
            for s in members:
                for r in candidates:
                    present = s.present & r.present
                    if not present.any():
                        continue
                    vl, vr = (r.values, s.values) if swapped else (s.values, r.values)
                    if op in COMPARISON:
                        keep = COMPARISON[op](vl, vr)
                        value = keep.astype(np.float64) if return_bool else vl
                        present = present if return_bool else present & keep
                    else:
                        value = ARITHMETIC[op](vl, vr)
                    labels = _result_labels(
                        s.labels, r.labels, op, card, on, names, include, return_bool
                    )
                    if present.any():
                        out.append(Series(labels, value, present))
    return _merge_same(out)


def _check_unique(one: list[Series], many: list[Series], card: str, steps: int) -> None:
    """Prometheus's errors for a match group that is not unique where it must be."""
    ones = np.vstack([s.present for s in one]).sum(axis=0)
    used = _any_present(many, steps)
    if np.any((ones > 1) & used):
        side = "left" if card == "one-to-many" else "right"
        raise PromQLError(
            f"found duplicate series for the match group {one[0].labels} on the {side} "
            "hand-side of the operation; many-to-many matching not allowed: matching labels "
            "must be unique on one side",
            kind="execution",
        )
    if card == "one-to-one":
        counts = np.vstack([s.present for s in many]).sum(axis=0)
        if np.any((counts > 1) & (ones > 0)):
            raise PromQLError(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right)",
                kind="execution",
            )
