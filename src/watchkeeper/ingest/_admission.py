"""Admission follows the writer: whether a spool takes one more request.

A spool refuses (`Overloaded`: 503 with `Retry-After`, which OTLP exporters and Prometheus's
remote-write retry) when its backlog passes `ingest.spool_max_backlog_bytes`, or when the
lag would pass `ingest.lag_budget_s`: the oldest record not yet stored is older than the
budget, or the backlog would take longer than it to write at the pace the writer keeps
(`WritePace`). Without the pace, acknowledging at 3x the written rate until the age showed
it let the lag reach 3x the budget (24 s p99 with a 5 s budget). So under overload the lag
stays near the budget and the senders slow down, instead of the dashboards going stale.

The spans' receiver (`IngestService`) and the spooled pipes of logs and metrics
(`SpooledIngest`) admit through it.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from watchkeeper.config import IngestConfig
from watchkeeper.errors import Overloaded
from watchkeeper.ingest._spool import Spool


class WritePace:
    """The bytes per second the writer kept over its last `n` batches: their bytes over
    their time, summed, so a batch that stalled (a checkpoint of the store) weighs as long
    as it lasted. An average of per-batch rates forgot a stall within a few fast batches and
    overrated the pace, letting in more than the budget allows (bench.ingest --spans 400000,
    flat out, 5 s budget, two interleaved runs each on a loaded machine: probe ack ->
    queryable p99 6.3 and 8.2 s before, 5.7 and 4.6 s after)."""

    def __init__(self, n: int) -> None:
        self._batches: collections.deque[tuple[int, float]] = collections.deque(maxlen=n)

    def add(self, nbytes: int, seconds: float) -> None:
        """One batch of `nbytes` spool bytes written in `seconds`."""
        self._batches.append((nbytes, seconds))

    def rate(self) -> float:
        """Bytes per second over the batches kept; 0 when none (unknown)."""
        seconds = sum(s for _, s in self._batches)
        return sum(b for b, _ in self._batches) / seconds if seconds > 0 else 0.0


class Admission:
    """The backlog's bounds of one spool, checked before a request is spooled.

    `what` names the signal in messages ("log ": "the log store is 7.0 s behind"); `refused`
    is told the reason of each refusal ("spool_backlog", "lag_budget"), for metrics. The
    backlog's age is a file read, done at most every `age_every_s` (0: on every check).
    """

    def __init__(
        self,
        spool: Spool,
        cfg: IngestConfig,
        *,
        batches: int,
        clock: Callable[[], float] = time.time,
        what: str = "",
        age_every_s: float = 0.0,
        refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._spool = spool
        self._cfg = cfg
        self._clock = clock
        self._what = what
        self._age_every_s = age_every_s
        self._refused = refused
        self._age: tuple[float, float] = (-1e9, 0.0)  # (when read, backlog age then)
        self.pace = WritePace(batches)  # spool bytes a second the writer keeps

    def age_s(self) -> float:
        """Age of the oldest spooled record not yet stored (0 when none)."""
        oldest = self._spool.oldest_unstored_ns()
        return 0.0 if oldest is None else max(self._clock() - oldest / 1e9, 0.0)

    def check(self) -> None:
        """`Overloaded` when the backlog is past its bound in bytes, or the lag would pass
        the budget."""
        backlog = self._spool.backlog_bytes()
        if backlog > self._cfg.spool_max_backlog_bytes:
            self._refused("spool_backlog")
            raise Overloaded(f"{self._what}ingest backlog is full; retry later", retry_after=2.0)
        budget = self._cfg.lag_budget_s
        if budget <= 0:
            return
        now = time.monotonic()
        read_at, age = self._age
        if now - read_at >= self._age_every_s:
            age = self.age_s()
            self._age = (now, age)
        rate = self.pace.rate()
        lag = max(age, backlog / rate if rate else 0.0)
        if lag > budget:
            self._refused("lag_budget")
            raise Overloaded(
                f"the {self._what}store is {lag:.1f} s behind, over the {budget:g} s lag "
                "budget; retry shortly",
                retry_after=min(max(1.0, lag - budget), budget),
            )
