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
    """A range vector: raw samples and the range (ms) each step looks back over; the steps
    it is evaluated at are the query's, moved back by its offset."""

    series: list[RangeSeries]
    range_ms: int
    ends: Times  # the end of each step's window (the step's time minus the offset)


Value = Vector | Scalar | String | Matrix


def without_name(labels: dict[str, str]) -> dict[str, str]:
    """The labels without `__name__` (what arithmetic and most functions return)."""
    return {k: v for k, v in labels.items() if k != "__name__"}


def key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A hashable, canonical form of a label set."""
    return tuple(sorted(labels.items()))
