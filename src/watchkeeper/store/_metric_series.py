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

import numpy as np
import pyarrow as pa

from watchkeeper.model import Labels
from watchkeeper.store._metric_last import LastSample
from watchkeeper.store._metric_write import Ints, Rows, Slots

_SID_CACHE = 1_000_000  # series ids remembered per project (emptied when full)


def series_id(project: str, labels: Labels) -> int:
    """The id of a series: a signed 64-bit hash of its project and labels."""
    h = hashlib.blake2b(digest_size=8)
    h.update(project.encode())
    for k, v in labels:
        h.update(b"\xff" + k.encode() + b"\xfe" + v.encode())
    return int.from_bytes(h.digest(), "little", signed=True)


class KnownSeries:
    """The writer's state of the series in its file; see the module docstring."""

    def __init__(self) -> None:
        self.last: dict[int, LastSample] = {}  # series id -> (last time, last value)
        self.moved: dict[int, LastSample] = {}  # last samples the file does not hold yet
        self.project_of: dict[int, str] = {}
        self.number: dict[int, int] = {}  # series id -> its number in the samples table
        self.next_number = 0
        self.count: Counter[str] = Counter()  # series per project
        self.names: dict[str, Counter[str]] = {}  # project -> series per metric name
        # project -> labels -> (series id, its number; -1 until the series is written)
        self._sids: dict[str, dict[Labels, tuple[int, int]]] = {}

    def load(self, sid: int, number: int, project: str, metric: str, last: LastSample) -> None:
        """One series of the file's series table (`last`: (None, None) without a sample)."""
        self.project_of[sid] = project
        self.number[sid] = number
        self.next_number = max(self.next_number, number + 1)
        self.count[project] += 1
        self.names.setdefault(project, Counter())[metric] += 1
        if last[0] is not None:
            self.last[sid] = last

    def clear(self) -> None:
        """Forget everything (before loading the file again)."""
        for held in (self.last, self.moved, self.project_of, self.number, self.count):
            held.clear()
        self.names.clear()
        self._sids.clear()
        self.next_number = 0

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
        sids, numbers = self._ids(project, series)
        firsts: dict[int, Labels] = {}
        for sid, labels in zip(sids, series, strict=True):
            firsts.setdefault(sid, labels)
        if len(firsts) == len(sids):  # distinct label sets, as decoders give them
            entry = np.arange(len(sids), dtype=np.int64)
        else:  # one series twice in a request: one slot
            slot_of = {sid: i for i, sid in enumerate(firsts)}
            entry = np.array([slot_of[sid] for sid in sids], np.int64)
            number_of = dict(zip(sids, numbers, strict=True))
            numbers = [number_of[sid] for sid in firsts]
        out = Slots(entry, list(firsts), numbers, [True] * len(firsts))
        out.prev = [self.last.get(sid) for sid in out.sids]
        room = limit - self.count[project]
        for i in [i for i, p in enumerate(out.prev) if p is None]:  # new, or no sample left
            sid = out.sids[i]
            if sid in self.project_of:
                continue
            if len(out.new) < room:
                out.new[sid] = firsts[sid]
            else:
                out.allowed[i] = False
        return out

    def numbers(self, slots: Slots) -> tuple[Ints, dict[int, int]]:
        """Each slot's series number (-1: a series refused, never written) and the numbers
        of the new series, the next ones free (taken once the write is committed)."""
        new = {sid: self.next_number + i for i, sid in enumerate(slots.new)}
        numbers = slots.numbers
        if new:
            numbers = [new.get(sid, n) for sid, n in zip(slots.sids, numbers, strict=True)]
        return np.array(numbers, np.int64), new

    def remember(
        self, project: str, new: dict[int, Labels], numbers: dict[int, int], ends: Rows
    ) -> None:
        """The state after a write is committed: its new series, each series' last sample."""
        self.number.update(numbers)
        self.next_number += len(numbers)
        values = ends.values.tolist()
        moved = {
            sid: (t, None if stale else v)
            for sid, t, v, stale in zip(
                ends.ids.tolist(), ends.t_ms.tolist(), values, ends.stale.tolist(), strict=True
            )
        }
        self.last.update(moved)
        self.moved.update(moved)
        names = self.names.setdefault(project, Counter())
        for sid, labels in new.items():
            self.project_of[sid] = project
            names[dict(labels).get("__name__", "")] += 1
        self.count[project] += len(new)

    def forget(self, gone: Sequence[tuple[int, str, str]]) -> None:
        """The series deleted (id, project, metric) forgotten."""
        self._sids.clear()  # the numbers of the series gone, with the rest
        for sid, project, metric in gone:
            self.last.pop(sid, None)
            self.moved.pop(sid, None)
            self.project_of.pop(sid, None)
            self.number.pop(sid, None)
            self.count[project] -= 1
            self.names[project][metric] -= 1

    def metrics(self) -> set[tuple[str, str]]:
        """(project, metric) of every metric with a series."""
        return {(p, m) for p, names in self.names.items() for m, n in names.items() if n > 0}


def series_table(
    project: str,
    new: dict[int, Labels],
    first: dict[int, int],
    numbers: dict[int, int],
    now_ms: int,
) -> pa.Table:
    """The rows of the series table for new series (their last sample set by a flush)."""
    n = len(new)
    return pa.table(
        {
            "series_id": pa.array(list(new), pa.int64()),
            "project": pa.array([project] * n, pa.string()),
            "metric": pa.array([dict(lb).get("__name__", "") for lb in new.values()], pa.string()),
            "labels": pa.array(
                [[kv for kv in lb if kv[0] != "__name__"] for lb in new.values()],
                pa.map_(pa.string(), pa.string()),
            ),
            "created_ms": pa.array([now_ms] * n, pa.int64()),
            "first_ms": pa.array([first.get(sid) for sid in new], pa.int64()),
            "last_ms": pa.array([None] * n, pa.int64()),  # set by the next flush
            "last_value": pa.array([None] * n, pa.float64()),
            "series_no": pa.array([numbers[sid] for sid in new], pa.int64()),
        }
    )
