"""The values a PromQL expression evaluates to, over every step of a query at once.

A query is evaluated at `steps` (ms): an instant vector is a list of series, each with a
value per step and a mask of the steps where it is present; a scalar has a value per step.
Range vectors exist only as the argument of a function (see `_promql_functions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.errors import ValidationError

# numpy's results are loosely typed: arrays of any dtype here, named for what they hold.
Floats = np.ndarray[Any, Any]
Mask = np.ndarray[Any, Any]
Times = np.ndarray[Any, Any]
Ints = np.ndarray[Any, Any]


class PromQLError(ValidationError):
    """A query that cannot be evaluated (Prometheus's `bad_data` or `execution` error)."""

    def __init__(self, message: str, kind: str = "bad_data") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Series:
    """One series of an instant vector: its labels, a value per step, where it is present."""

    labels: dict[str, str]
    values: Floats
    present: Mask


@dataclass(slots=True)
class Vector:
    """An instant vector over the query's steps."""

    series: list[Series]


@dataclass(slots=True)
class Scalar:
    """A scalar over the query's steps."""

    values: Floats


@dataclass(slots=True)
class String:
    """A string literal (the arguments of label_replace, count_values...)."""

    value: str


@dataclass(slots=True)
class RangeSeries:
    """One series' raw samples (stale markers left out) for a range function."""

    labels: dict[str, str]
    t_ms: Times
    values: Floats


@dataclass(slots=True)
class Matrix:
    """A range vector: every series' raw samples (stale markers left out) end to end, series
    k's at `[offsets[k], offsets[k + 1])` in time order, and the range (ms) each step looks
    back over; the steps it is evaluated at are the query's, moved back by its offset."""

    labels: list[dict[str, str]]
    offsets: Ints
    t_ms: Times
    values: Floats
    range_ms: int
    ends: Times  # the end of each step's window (the step's time minus the offset)

    @classmethod
    def of(cls, series: list[RangeSeries], range_ms: int, ends: Times) -> Matrix:
        """A matrix of separate series (each in time order)."""
        sizes = [len(rs.t_ms) for rs in series]
        return cls(
            [rs.labels for rs in series],
            np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).astype(np.int64),
            np.concatenate([rs.t_ms for rs in series] or [np.zeros(0, np.int64)]),
            np.concatenate([rs.values for rs in series] or [np.zeros(0)]).astype(np.float64),
            range_ms,
            ends,
        )

    @property
    def series(self) -> list[RangeSeries]:
        """Each series with samples on its own (views of the arrays)."""
        out = []
        for k, labels in enumerate(self.labels):
            lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
            if hi > lo:
                out.append(RangeSeries(labels, self.t_ms[lo:hi], self.values[lo:hi]))
        return out


Value = Vector | Scalar | String | Matrix


def without_name(labels: dict[str, str]) -> dict[str, str]:
    """The labels without `__name__` (what arithmetic and most functions return)."""
    return {k: v for k, v in labels.items() if k != "__name__"}


def key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A hashable, canonical form of a label set."""
    return tuple(sorted(labels.items()))
