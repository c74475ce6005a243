"""`RecordRate`: records per second per project, a token bucket each (issue 12: a flood
from one project is answered 429 with `Retry-After`, the others go on).

A bucket holds `per_s * burst_s` records and fills at `per_s`; a request takes its records
from the buckets of every project it writes, all or none. A request larger than a full
bucket passes when the bucket is full (it would never pass otherwise) and leaves it in debt.
Pure over an injected clock; it takes its own lock, so any thread may call it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

_MAX_PROJECTS = 10_000  # beyond this many buckets, the full ones (idle projects) are dropped


class RecordRate:
    """Per-project token buckets of records; see the module docstring."""

    def __init__(
        self, per_s: float, burst_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_s = per_s
        self.capacity = per_s * burst_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # project -> (tokens, at)
        self._lock = threading.Lock()

    def _level(self, project: str, now: float) -> float:
        tokens, at = self._buckets.get(project, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.per_s)

    def take(self, counts: Mapping[str, int]) -> float:
        """Take `counts` (records by project): 0.0 when taken, else the seconds after which
        the request would pass (nothing taken)."""
        now = self._clock()
        with self._lock:
            levels = {p: self._level(p, now) for p in counts}
            wait = 0.0
            for project, n in counts.items():
                level = levels[project]
                if n > level and level < self.capacity:
                    wait = max(wait, (min(n, self.capacity) - level) / self.per_s)
            if wait:
                return float(max(1, math.ceil(wait)))
            for project, n in counts.items():
                self._buckets[project] = (levels[project] - n, now)
            if len(self._buckets) > _MAX_PROJECTS:
                self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        full = [p for p in self._buckets if self._level(p, now) >= self.capacity]
        for project in full:
            del self._buckets[project]
