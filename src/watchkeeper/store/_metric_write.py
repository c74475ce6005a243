"""Samples as columns, and the metric writer's per-sample rules computed on whole columns.

`SampleColumns` is what a decoder hands the metric store: each distinct label set once, and
per sample the index of its series, its time, value and flags in numpy arrays, so the
store's work per sample is array arithmetic rather than a Python loop.

`check` applies the rules of `watchkeeper.store.metrics` (out-of-order, duplicate,
duplicate_timestamp, delta added to the last value) exactly as a loop over the samples in
order would: the samples are taken in rounds by their rank within their series (the first
sample of every series, then the second, ...), so each round sees every series at most once
and the state the earlier samples of its series left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from watchkeeper.model import Labels, Sample

Ints = np.ndarray[Any, np.dtype[np.int64]]
Floats = np.ndarray[Any, np.dtype[np.float64]]
Bools = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(slots=True)
class SampleColumns:
    """Samples of one request: `series` label sets (each once, but for `concat`'s), and per
    sample its series index, time (ms), value, whether it is a staleness marker, and
    whether it is a delta."""

    series: list[Labels]
    index: Ints
    t_ms: Ints
    values: Floats  # any value where `stale`
    stale: Bools
    delta: Bools

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def from_samples(cls, samples: Sequence[Sample]) -> SampleColumns:
        """The columns of a list of samples (each label set once)."""
        slots: dict[Labels, int] = {}
        index = [slots.setdefault(s.labels, len(slots)) for s in samples]
        return cls(
            series=list(slots),
            index=np.array(index, np.int64),
            t_ms=np.array([s.t_ms for s in samples], np.int64),
            values=np.array([0.0 if s.value is None else s.value for s in samples], np.float64),
            stale=np.array([s.value is None for s in samples], np.bool_),
            delta=np.array([s.delta for s in samples], np.bool_),
        )

    @classmethod
    def concat(cls, parts: Sequence[SampleColumns]) -> SampleColumns:
        """The samples of several requests, in order, as one (a label set may come twice)."""
        offsets = np.cumsum([0] + [len(p.series) for p in parts[:-1]])
        return cls(
            series=[labels for p in parts for labels in p.series],
            index=np.concatenate([p.index + off for p, off in zip(parts, offsets, strict=True)]),
            t_ms=np.concatenate([p.t_ms for p in parts]),
            values=np.concatenate([p.values for p in parts]),
            stale=np.concatenate([p.stale for p in parts]),
            delta=np.concatenate([p.delta for p in parts]),
        )

    def take(self, rows: Ints) -> SampleColumns:
        """The samples at positions `rows`, in that order, with only their label sets."""
        used, index = np.unique(self.index[rows], return_inverse=True)
        return SampleColumns(
            series=[self.series[i] for i in used.tolist()],
            index=index.astype(np.int64).reshape(-1),
            t_ms=self.t_ms[rows],
            values=self.values[rows],
            stale=self.stale[rows],
            delta=self.delta[rows],
        )

    def to_samples(self) -> list[Sample]:
        """The samples again, one object each (for tests and small paths)."""
        return [
            Sample(self.series[i], int(t), None if st else float(v), bool(d))
            for i, t, v, st, d in zip(
                self.index, self.t_ms, self.values, self.stale, self.delta, strict=True
            )
        ]


@dataclass(slots=True)
class Last:
    """Each series' last stored sample, by series slot: whether it has one, its time, its
    value and whether it was a staleness marker. `check` moves it on."""

    has: Bools
    t_ms: Ints
    values: Floats
    stale: Bools


@dataclass(slots=True)
class Checked:
    """What `check` decided: which samples to store and with which value (a delta added to
    the last one), and the samples refused, by reason."""

    keep: Bools
    values: Floats
    rejected: Counter[str]


@dataclass(slots=True)
class Slots:
    """The distinct series of one write: per request entry its slot; per slot the series
    id and number (-1: new, or refused), whether it may be written (known, or new within
    the limit), and its last sample (`check` moves it on); the new series it may create."""

    entry: Ints
    sids: Ints
    numbers: Ints
    allowed: Bools
    last: Last
    new: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # slots, in order
    new_labels: list[Labels] = field(default_factory=list)


@dataclass(slots=True)
class Rows:
    """Samples to insert (or each series' last one): ids, times, values, stale flags."""

    ids: np.ndarray[Any, np.dtype[np.int64]]
    t_ms: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]
    stale: np.ndarray[Any, np.dtype[np.bool_]]

    def table(self, names: tuple[str, str, str]) -> pa.Table:
        """An Arrow table of (id, time, value) under these column names, NULL where stale."""
        value = pa.array(self.values, pa.float64(), mask=self.stale)
        columns = (pa.array(self.ids), pa.array(self.t_ms), value)
        return pa.table(dict(zip(names, columns, strict=True)))


def ranks(index: Ints) -> Ints:
    """Each sample's rank among the samples of its series, in order (0 for the first)."""
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(index)]))
    out = np.empty(len(index), np.int64)
    out[order] = np.arange(len(index)) - run_start
    return out


def check(cols: SampleColumns, slot: Ints, usable: Bools, last: Last) -> Checked:
    """Decide every sample of `cols` against `last` (series slot per sample in `slot`; a
    sample whose `usable` is False is left out, counted by the caller); moves `last` on."""
    keep = np.zeros(len(cols), np.bool_)
    values = cols.values.copy()
    rejected: Counter[str] = Counter()
    rank = ranks(slot)
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = np.flatnonzero((rank == r) & usable)
        s = slot[sel]
        t, v, stale = cols.t_ms[sel], values[sel], cols.stale[sel]
        has, pt, pv, ps = last.has[s], last.t_ms[s], last.values[s], last.stale[s]
        older = has & (t < pt)
        with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf is NaN, as in Python
            v = np.where(has & cols.delta[sel] & ~stale & ~ps, pv + v, v)
        same_t = has & ~older & (t == pt)
        same_v = (stale & ps) | (~stale & ~ps & ((v == pv) | (np.isnan(v) & np.isnan(pv))))
        rejected["out_of_order"] += int(older.sum())
        rejected["duplicate"] += int((same_t & same_v).sum())
        rejected["duplicate_timestamp"] += int((same_t & ~same_v).sum())
        ok = ~older & ~same_t
        values[sel] = v
        keep[sel[ok]] = True
        moved = s[ok]
        last.has[moved] = True
        last.t_ms[moved], last.values[moved], last.stale[moved] = t[ok], v[ok], stale[ok]
    return Checked(keep, values, +rejected)
