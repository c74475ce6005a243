"""What the metric writer knows of every series in its file, kept in memory: its id (a hash
of project and labels), its number in the samples table, its project and its last sample;
per project how many series and how many of each metric; the ids of label sets seen lately.

The metric store (`watchkeeper.store.metrics`) owns the file and its transactions; this
decides, for a write, which of its series are known, which are new and which the project's
series limit refuses (`slots`), and holds the state once the write is committed
(`remember`). Loaded from the file's series table when the store opens (`load`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from watchkeeper.model import Labels
from watchkeeper.store._metric_last import LastSample
from watchkeeper.store._metric_write import Ints, Last, Slots

_SID_CACHE = 1_000_000  # series ids remembered per project (emptied when full)


def series_id(project: str, labels: Labels) -> int:
    """The id of a series: a signed 64-bit hash of its project and labels (each label
    `\xff name \xfe value`, UTF-8), hashed at once."""
    parts = [b"\xff%b\xfe%b" % (k.encode(), v.encode()) for k, v in labels]
    digest = hashlib.blake2b(project.encode() + b"".join(parts), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class KnownSeries:
    """The writer's state of the series in its file; see the module docstring. Each
    series' last sample is kept in arrays by series number, so that a write looks up its
    series' last samples and moves them on with array operations, not per series."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.project_of: dict[int, str] = {}
        self.number: dict[int, int] = {}  # series id -> its number in the samples table
        self.next_number = 0
        self.count: Counter[str] = Counter()  # series per project
        self.names: dict[str, Counter[str]] = {}  # project -> series per metric name
        # project -> labels -> (series id, its number; -1 until the series is written)
        self._sids: dict[str, dict[Labels, tuple[int, int]]] = {}
        # by series number: its id, its last sample, whether it moved since the last flush
        self._sid = np.zeros(0, np.int64)
        self._last = Last(
            np.zeros(0, np.bool_), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)
        )
        self._moved = np.zeros(0, np.bool_)
        self._room(1)  # never empty: a series not known yet reads number 0, masked

    def _room(self, numbers: int) -> None:
        """Arrays long enough for `numbers` series numbers (doubling)."""
        size = len(self._sid)
        if numbers <= size:
            return
        grown = max(numbers, 2 * size, 1024)

        def more(a: Any) -> Any:
            out = np.zeros(grown, a.dtype)
            out[:size] = a
            return out

        self._sid, self._moved = more(self._sid), more(self._moved)
        last = self._last
        self._last = Last(more(last.has), more(last.t_ms), more(last.values), more(last.stale))

    def load(self, sid: int, number: int, project: str, metric: str, last: LastSample) -> None:
        """One series of the file's series table (`last`: (None, None) without a sample)."""
        self._room(number + 1)
        self.project_of[sid] = project
        self.number[sid] = number
        self._sid[number] = sid
        self.next_number = max(self.next_number, number + 1)
        self.count[project] += 1
        self.names.setdefault(project, Counter())[metric] += 1
        if last[0] is not None:
            self._set_last(number, last, moved=False)

    def _set_last(self, number: int, last: LastSample, moved: bool) -> None:
        t, v = last
        self._last.has[number] = True
        self._last.t_ms[number] = t
        self._last.values[number] = 0.0 if v is None else v
        self._last.stale[number] = v is None
        self._moved[number] = moved

    def recovered(self, sid: int, last: LastSample) -> None:
        """A series' last sample read from the samples (after a stop without a flush),
        kept when it is newer than the file's copy."""
        number = self.number.get(sid)
        if number is not None and not (
            self._last.has[number] and self._last.t_ms[number] >= last[0]
        ):
            self._set_last(number, last, moved=True)

    def last_ms(self, sid: int) -> int | None:
        """The time of a series' last sample (None: unknown, or none)."""
        number, last = self.number.get(sid), self._last
        return int(last.t_ms[number]) if number is not None and last.has[number] else None

    def newest_ms(self) -> int | None:
        """The time of the newest sample of any series (None: none)."""
        last, n = self._last, self.next_number
        times = last.t_ms[:n][last.has[:n]]
        return int(times.max()) if len(times) else None

    def moved(self) -> pa.Table | None:
        """(sid, t, v) of each series whose last sample moved since `flushed`, v NULL
        where it is a staleness marker; None when none moved."""
        at = np.flatnonzero(self._moved[: self.next_number])
        if not len(at):
            return None
        last = self._last
        value = pa.array(last.values[at], pa.float64(), mask=last.stale[at])
        return pa.table({"sid": self._sid[at], "t": last.t_ms[at], "v": value})

    def flushed(self) -> None:
        """The file holds every series' last sample now."""
        self._moved[:] = False

    def clear(self) -> None:
        """Forget everything (before loading the file again)."""
        self._reset()

    def _ids(self, project: str, series: list[Labels]) -> tuple[list[int], list[int]]:
        """Each series' id and number (-1: none yet): hashed and looked up once per series
        seen lately, not per sample nor per write."""
        ids = self._sids.setdefault(project, {})
        if len(ids) + len(series) > _SID_CACHE:
            ids.clear()
        sids, numbers = [], []
        for labels in series:
            got = ids.get(labels)
            if got is None or got[1] < 0:
                sid = series_id(project, labels) if got is None else got[0]
                got = ids[labels] = (sid, self.number.get(sid, -1))
            sids.append(got[0])
            numbers.append(got[1])
        return sids, numbers

    def slots(self, project: str, series: list[Labels], limit: int) -> Slots:
        """Each distinct series of a write once (a slot), new ones past the project's
        `limit` of series refused."""
        sid_list, number_list = self._ids(project, series)
        sids, numbers = np.array(sid_list, np.int64), np.array(number_list, np.int64)
        if len(set(sid_list)) == len(sid_list):  # distinct label sets, as decoders give them
            entry, firsts = np.arange(len(sids), dtype=np.int64), None
        else:  # one series twice in a write: one slot, in order of first appearance
            _, first, inverse = np.unique(sids, return_index=True, return_inverse=True)
            order = np.argsort(first)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            entry, firsts = rank[inverse].reshape(-1), first[order]
            sids, numbers = sids[firsts], numbers[firsts]
        known = numbers >= 0
        at = np.where(known, numbers, 0)
        last = self._last
        has = known & last.has[at]
        prev = Last(
            has,
            np.where(has, last.t_ms[at], 0),
            np.where(has, last.values[at], 0.0),
            has & last.stale[at],
        )
        new = np.flatnonzero(~known)
        room = max(0, limit - self.count[project])
        allowed = np.ones(len(sids), np.bool_)
        allowed[new[room:]] = False
        new = new[:room]
        picked = new if firsts is None else firsts[new]
        labels = [series[i] for i in picked.tolist()]
        return Slots(entry, sids, numbers, allowed, prev, new, labels)

    def numbers(self, slots: Slots) -> Ints:
        """Each slot's series number (-1: a series refused, never written), the new series
        given the next ones free (taken by `remember` once the write is committed)."""
        if not len(slots.new):
            return slots.numbers
        numbers = slots.numbers.copy()
        numbers[slots.new] = self.next_number + np.arange(len(slots.new))
        return numbers

    def remember(
        self, project: str, slots: Slots, numbers: Ints, touched: Ints, metrics: list[str]
    ) -> None:
        """The state after a write is committed: its new series (`metrics`: their metric
        names), and the last sample of each slot `touched` (moved on by `check`)."""
        new = slots.new
        if len(new):
            self._room(self.next_number + len(new))
            new_numbers = numbers[new]
            new_sids = slots.sids[new]
            self._sid[new_numbers] = new_sids
            sid_list = new_sids.tolist()
            self.number.update(zip(sid_list, new_numbers.tolist(), strict=True))
            self.project_of.update(dict.fromkeys(sid_list, project))
            self.next_number += len(new)
            self.count[project] += len(new)
            self.names.setdefault(project, Counter()).update(metrics)
        at, moved = numbers[touched], slots.last
        self._last.has[at] = True
        self._last.t_ms[at] = moved.t_ms[touched]
        self._last.values[at] = moved.values[touched]
        self._last.stale[at] = moved.stale[touched]
        self._moved[at] = True

    def forget(self, gone: Sequence[tuple[int, str, str]]) -> None:
        """The series deleted (id, project, metric) forgotten."""
        self._sids.clear()  # the numbers of the series gone, with the rest
        for sid, project, metric in gone:
            number = self.number.pop(sid, None)
            if number is not None:
                self._last.has[number] = self._moved[number] = False
            self.project_of.pop(sid, None)
            self.count[project] -= 1
            self.names[project][metric] -= 1

    def metrics(self) -> set[tuple[str, str]]:
        """(project, metric) of every metric with a series."""
        return {(p, m) for p, names in self.names.items() for m, n in names.items() if n > 0}


def series_table(project: str, sids: Ints, labels: list[Labels], first: Ints, numbers: Ints,
                 now_ms: int) -> pa.Table:  # fmt: skip
    """The rows of the series table for new series (their last sample set by a flush)."""
    n = len(labels)
    metrics, keys, values, ends = [], [], [], [0]
    for label_set in labels:  # the map's entries flat, the name apart: one pass
        metric = ""
        for k, v in label_set:
            if k == "__name__":
                metric = v
            else:
                keys.append(k)
                values.append(v)
        metrics.append(metric)
        ends.append(len(keys))
    label_map = pa.MapArray.from_arrays(
        pa.array(ends, pa.int32()), pa.array(keys, pa.string()), pa.array(values, pa.string())
    )
    return pa.table(
        {
            "series_id": pa.array(sids, pa.int64()),
            "project": pa.array([project] * n, pa.string()),
            "metric": pa.array(metrics, pa.string()),
            "labels": label_map,
            "created_ms": pa.array(np.full(n, now_ms, np.int64)),
            "first_ms": pa.array(first, pa.int64()),
            "last_ms": pa.nulls(n, pa.int64()),  # set by the next flush
            "last_value": pa.nulls(n, pa.float64()),
            "series_no": pa.array(numbers, pa.int64()),
        }
    )
