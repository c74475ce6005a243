"""Decode + normalize of spool records, in this process or in worker processes.

The processor thread hands records to a `Processing` in spool order and takes the results
back in the same order, so the writer (and the checkpoint behind it) sees exactly what the
in-process path would. Either way a record's rows come back as columns of bytes
(`model.ColumnBatch`, one chunk per record), never as row objects: the server builds no
Python object per span (its heap grew with each burst and could not shrink), and the store
writes Arrow columns over those bytes. When the store offers a payload codec, the payloads
are compressed here too (`PackedPayload`): zstd was a third of the writer thread's time.
A worker that dies breaks the pool; the pool is replaced and the records in flight are
processed again, one at a time, so a record that kills its worker twice is skipped like
any poisoned record (counted), and nothing else is lost or written twice.
Workers that went without a record for `idle_s` stop (45-55 MiB each, kept for nothing
while ingest is idle) and start again with the next record, which waits for them (about a
second: a fresh interpreter importing the pipeline). It is not processed here meanwhile:
a record that crashes its process must crash a worker, never the server.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._child import Idle, spawn_pool, start_child
from watchkeeper.ingest._cost import Pricer
from watchkeeper.ingest._decode import decode
from watchkeeper.ingest._normalize import Settings, Step, normalize
from watchkeeper.ingest._spool import FLAG_PROJECT_FROM_RESOURCE, Record
from watchkeeper.model import ColumnBatch, PackedPayload, PayloadRow, SpanBatch

log = logging.getLogger("watchkeeper.ingest")


class PayloadPacker(Protocol):
    """Encodes payloads the way the store keeps them (`DuckDBStore.payload_codec`)."""

    def pack(self, p: PayloadRow) -> PackedPayload:
        """The payload encoded."""
        ...


_CRASHES_TO_SKIP = 2  # a record that breaks a fresh worker this often, alone, is poisoned


@dataclass(slots=True)
class Processed:
    """What processing one record gave: its batch, spans dropped or failed, or why it failed.

    `process` gives its rows (`SpanBatch`); a `Processing` gives them as columns."""

    batch: Any  # SpanBatch from `process`, ColumnBatch from a `Processing`
    dropped: int = 0
    reason: str = ""  # set when the record could not be processed (then batch is empty)
    error: str = ""  # the traceback, for the log
    failed: int = 0  # spans whose normalization raised (left out; the others are kept)


def process(record: Record, pricer: Pricer, steps: Sequence[Step]) -> Processed:
    """Decode and normalize one spool record; a failure is a `Processed` with its reason."""
    settings = Settings(record.project, bool(record.flags & FLAG_PROJECT_FROM_RESOURCE), pricer)
    try:
        decoded = decode(record.body, "json" if record.content_type == "json" else "protobuf")
        done = normalize(decoded.spans, settings, steps)
    except Exception as exc:  # one poisoned record must not stall everything behind it
        reason = "undecodable_in_spool" if isinstance(exc, DecodeError) else "normalize_error"
        return Processed(SpanBatch(), 0, reason, traceback.format_exc())
    return Processed(done.batch, done.dropped, error=done.error, failed=done.failed)


def columnar(out: Processed, packer: PayloadPacker | None) -> Processed:
    """The outcome with its rows as one `ColumnBatch` chunk, payloads packed when a packer
    is given. A value no column can hold sets the record aside (with its reason)."""
    try:
        payloads: list[PayloadRow | PackedPayload] = out.batch.payloads
        if packer is not None:
            payloads = [p if isinstance(p, PackedPayload) else packer.pack(p) for p in payloads]
        batch = ColumnBatch.of(SpanBatch(out.batch.spans, payloads), packed=packer is not None)
    except Exception:  # e.g. an integer past int64 that normalization let through
        return Processed(ColumnBatch(), 0, "unstorable_value", traceback.format_exc())
    return Processed(batch, out.dropped, out.reason, out.error, out.failed)


# --- the worker side ----------------------------------------------------------------------

_worker_pricer: Pricer | None = None
_worker_steps: Sequence[Step] = ()
_worker_packer: PayloadPacker | None = None


def _init_worker(
    pricer: Pricer,
    steps: Sequence[Step],
    parent: int,
    packer: Callable[[], PayloadPacker] | None = None,
) -> None:
    global _worker_pricer, _worker_steps, _worker_packer
    start_child(parent)
    _worker_pricer, _worker_steps = pricer, steps
    _worker_packer = packer() if packer is not None else None


def _process_in_worker(record: Record) -> Processed:
    assert _worker_pricer is not None
    return columnar(process(record, _worker_pricer, _worker_steps), _worker_packer)


def _ready() -> None:
    """A task that only makes the pool start a worker."""


# --- the processor side -------------------------------------------------------------------


class Processing:
    """Records in, `Processed`s out in the same order; inline here (workers=0)."""

    def __init__(
        self,
        pricer: Pricer,
        steps: Sequence[Step],
        packer: Callable[[], PayloadPacker] | None = None,
    ) -> None:
        self._pricer = pricer
        self._steps = steps
        self._packer = packer
        self._inline_packer = packer() if packer is not None else None
        self._done: collections.deque[tuple[Record, Processed]] = collections.deque()

    @property
    def full(self) -> bool:
        """True when `take` should be called before the next `submit`."""
        return bool(self._done)

    def __len__(self) -> int:
        return len(self._done)

    def submit(self, record: Record) -> None:
        """Start processing a record (here: process it now)."""
        out = process(record, self._pricer, self._steps)
        self._done.append((record, columnar(out, self._inline_packer)))

    @property
    def running(self) -> int:
        """Worker processes running now (none here)."""
        return 0

    def retire_if_idle(self) -> bool:
        """Stop the workers if they had no record for a while; True if they were stopped."""
        return False

    def ready(self) -> bool:
        """True when `take` would not wait."""
        return bool(self._done)

    def take(self) -> tuple[Record, Processed]:
        """The oldest record and its outcome, waiting for it if need be."""
        return self._done.popleft()

    def close(self) -> None:
        """Release the workers (none here)."""


class PoolProcessing(Processing):
    """Records processed by `workers` processes, at most `window` of them in flight."""

    def __init__(
        self,
        pricer: Pricer,
        steps: Sequence[Step],
        workers: int,
        window: int,
        packer: Callable[[], PayloadPacker] | None = None,
        *,
        idle_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(pricer, steps, packer)
        self._workers = workers
        self._window = window
        self._idle = Idle(idle_s, clock)  # idle_s None: the workers stay
        self._flight: collections.deque[tuple[Record, Future[Processed]]] = collections.deque()
        self._pool: ProcessPoolExecutor | None = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = spawn_pool(
            self._workers,
            _init_worker,
            (self._pricer, tuple(self._steps), os.getpid(), self._packer),
        )
        # Start every worker now, not when the first records arrive: starting one (a fresh
        # interpreter importing the pipeline) takes about a second, which the first spans
        # after a start would otherwise wait (measured: the lag's p99 at 10k spans/s).
        for _ in range(self._workers):
            pool.submit(_ready)
        return pool

    def _live_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:  # stopped while idle: start again
            self._pool = self._new_pool()
        return self._pool

    @property
    def running(self) -> int:
        """Worker processes running now (0 while stopped for being idle)."""
        return 0 if self._pool is None else self._workers

    def retire_if_idle(self) -> bool:
        """Stop the workers when no record came for `idle_s` and none is in flight."""
        if self._pool is None or not self._idle.over(busy=bool(self._flight)):
            return False
        self._pool.shutdown(wait=True)
        self._pool = None
        return True

    @property
    def full(self) -> bool:
        """True when the window of records in flight is full."""
        return len(self._flight) >= self._window

    def __len__(self) -> int:
        return len(self._flight)

    def submit(self, record: Record) -> None:
        """Send a record to a worker (starting the workers if they stopped)."""
        self._idle.used()
        self._flight.append((record, self._submit(record)))

    def _submit(self, record: Record) -> Future[Processed]:
        try:
            return self._live_pool().submit(_process_in_worker, record)
        except BrokenProcessPool:
            fut: Future[Processed] = Future()
            fut.set_exception(BrokenProcessPool("pool broken at submit"))
            return fut

    def ready(self) -> bool:
        """True when the oldest record in flight is done."""
        return bool(self._flight) and self._flight[0][1].done()

    def take(self) -> tuple[Record, Processed]:
        """The oldest record and its outcome; replaces the pool if a worker died."""
        record, fut = self._flight.popleft()
        try:
            return record, fut.result()
        except BrokenProcessPool:
            log.error("an ingest worker died; restarting the pool and reprocessing")
            return record, self._recover(record)

    def _recover(self, head: Record) -> Processed:
        rest = [r for r, _ in self._flight]
        self._flight.clear()
        self._restart()
        outcome = self._alone(head)
        for record in rest:  # resubmitted in order, after the head is known to be done
            self.submit(record)
        return outcome

    def _alone(self, record: Record) -> Processed:
        for _ in range(_CRASHES_TO_SKIP):
            try:
                return self._submit(record).result()
            except BrokenProcessPool:
                self._restart()
        return Processed(ColumnBatch(), 0, "worker_crash", "the record killed its worker each time")

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def processing(
    pricer: Pricer,
    steps: Sequence[Step],
    workers: int,
    packer: Callable[[], PayloadPacker] | None = None,
    idle_s: float | None = None,
) -> Processing:
    """Worker processes when asked for and the pricer and steps can be sent to them.

    `packer` (the store's payload codec class) lets the workers compress payloads too;
    `idle_s`: the workers stop after that long without a record (None: they stay).
    """
    if workers <= 0:
        return Processing(pricer, steps, packer)
    try:
        pickle.dumps((pricer, tuple(steps), packer))
    except Exception:  # e.g. a step that is a lambda or a closure
        log.warning("ingest.workers=%d: steps or pricer cannot go to a process; inline", workers)
        return Processing(pricer, steps, packer)
    return PoolProcessing(pricer, steps, workers, window=4 * workers, packer=packer, idle_s=idle_s)
