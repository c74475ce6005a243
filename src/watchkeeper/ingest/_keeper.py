"""Keeping a batch: the writer thread writes it into the store whatever the store answers.

A write that may pass later (the store down or full) is retried without end, backing off;
rows the store refuses for themselves (a value out of a column's range) are retried a few
times, then the batch is written in halves down to single records, and the records it
still refuses are set aside (read back from the spool into the dead letter), once the
store is shown to answer and to take the batch's other records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from watchkeeper.errors import StoreDataError, StoreError
from watchkeeper.ingest._metrics import IngestMetrics
from watchkeeper.ingest._spool import Position, Record, Spool
from watchkeeper.model import ColumnBatch
from watchkeeper.store import Store

log = logging.getLogger("watchkeeper.ingest")

_RETRY_MAX_S = 5.0
_DATA_ATTEMPTS = 3  # writes of a batch the store refuses for its rows, before halving it


@dataclass(slots=True)
class Pending:
    """A batch under construction in the processor, and where each record's rows end."""

    start: Position  # where its first record starts (the previous batch's end)
    batch: ColumnBatch = field(default_factory=ColumnBatch)
    end: Position | None = None
    appended_ns: list[int] = field(default_factory=list)
    started: float = 0.0
    bytes: int = 0  # spool bytes of its records
    #: per record, in spool order: (its end, the index in `batch` after its last chunk)
    records: list[tuple[Position, int]] = field(default_factory=list)
    aside: set[int] = field(default_factory=set)  # records set aside (the store refused them)

    def part(self, lo: int, hi: int) -> ColumnBatch:
        """The rows of records lo..hi-1."""
        first = self.records[lo - 1][1] if lo else 0
        return self.batch.chunks(first, self.records[hi - 1][1])

    def record_start(self, i: int) -> Position:
        """Where record i starts in the spool."""
        return self.records[i - 1][0] if i else self.start


def retryable(exc: BaseException) -> bool:
    """Whether a failed write may pass later (store down, disk full) or never will (its rows)."""
    if isinstance(exc, StoreDataError):
        return False
    return isinstance(exc, (StoreError, OSError, MemoryError))


class Keeper:
    """Writes batches for the writer thread (one at a time); `failing_since` is when store
    writes began failing (monotonic), None while they pass."""

    def __init__(
        self,
        store: Store,
        metrics: IngestMetrics,
        spool: Spool,
        set_aside: Callable[[Record, str], None],
        stopping: threading.Event,
        on_written: Callable[[ColumnBatch], None] | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._spool = spool
        self._set_aside = set_aside
        self._stopping = stopping
        self._on_written = on_written
        self.failing_since: float | None = None

    def keep(self, item: Pending) -> bool:
        """Write a batch: retry what may pass, set aside the records the store refuses.

        False only when stopping interrupts the retries (the spool keeps the batch).
        """
        delay = 0.1
        refused = 0
        for attempt in range(1_000_000):
            if attempt >= 3 and self._stopping.is_set():
                return False
            try:
                if refused >= _DATA_ATTEMPTS:
                    self._isolate(item)
                else:
                    self._write_batch(item.batch)
            except Exception as exc:  # the store is down or full, or refuses these rows
                self._metrics.store_write_errors.inc()
                self.failing_since = self.failing_since or time.monotonic()
                if not retryable(exc):
                    refused += 1
                log.error("store write of %d spans failed; retrying: %s", len(item.batch), exc)
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            self.failing_since = None
            return True
        return False

    def _write_batch(self, batch: ColumnBatch) -> None:
        if not len(batch):
            return
        started = time.perf_counter()
        self._store.write(batch)
        self._metrics.batch_write_seconds.observe(time.perf_counter() - started)
        self._metrics.spans_written.inc(len(batch))
        if self._on_written is not None:
            self._on_written(batch)

    def _write_halves(self, item: Pending, lo: int, hi: int, refused: dict[int, Exception]) -> None:
        """Write records lo..hi-1, halving the range around refusals down to single records,
        which land in `refused`. A retryable failure propagates (the caller retries it all;
        writes are idempotent, so the halves already written count once)."""
        if hi - lo == 1 and lo in item.aside:
            return  # set aside by an earlier pass (a retryable failure came after it)
        try:
            self._write_batch(item.part(lo, hi))
            return
        except Exception as exc:
            if retryable(exc):
                raise
            if hi - lo == 1:
                refused[lo] = exc
                return
        mid = (lo + hi) // 2
        self._write_halves(item, lo, mid, refused)
        self._write_halves(item, mid, hi, refused)

    def _isolate(self, item: Pending) -> None:
        """Write what the store takes of a refused batch; set aside the records it refuses,
        once it is shown to be the records and not the store: the store answers, and it
        took some records of the batch (a store that refuses them all is failing itself:
        a DuckDB database invalidated by an out-of-memory checkpoint refused every write,
        and 29,705 records were set aside before this check)."""
        refused: dict[int, Exception] = {}
        self._write_halves(item, 0, len(item.records), refused)
        if not refused:
            return
        with_rows = [i for i in range(len(item.records)) if len(item.part(i, i + 1))]
        if len(with_rows) > 1 and set(with_rows) <= set(refused) | item.aside:
            raise StoreError("the store refused every record of the batch: retrying it all")
        self._store.ping()  # a StoreError here is retryable: nothing is set aside
        for i, exc in refused.items():
            self._set_aside_stored(item, i, exc)
            item.aside.add(i)

    def _set_aside_stored(self, item: Pending, i: int, exc: Exception) -> None:
        """Set aside record i of a batch (read back from the spool) the store refused."""
        end = item.records[i][0]
        rec = next(self._spool.read(item.record_start(i), 1), None)
        if rec is None or rec.end != end:  # cannot happen while the checkpoint is behind it
            raise RuntimeError(f"spool record ending at {end} cannot be read back")
        spans = len(item.part(i, i + 1))
        log.error("the store refused the %d spans of the record before %s: set aside", spans, end)
        self._metrics.dead_letter_spans.inc(spans)
        self._set_aside(rec, f"store_refused: {exc}")
