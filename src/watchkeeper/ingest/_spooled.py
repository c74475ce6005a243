"""`SpooledWriter`: the durable path of a signal whose records need no worker processes
(metrics, logs): a spool of its own, requests acknowledged once their record is on disk, one
writer thread that decodes each record and hands it to the signal's store, then moves the
checkpoint.

What a signal brings is a decoder and a writer (`decode(record)`, `write(record, decoded)`);
what every signal gets here, once: group commit, admission that follows the writer
(`_admission`: the backlog bounded by bytes and by age, `ingest.spool_max_backlog_bytes` and
`ingest.lag_budget_s`: the age of the oldest record not stored, or the time the backlog
takes at the pace the writer keeps, whichever is more; by age alone, senders acknowledged
faster than the writer stored got lags of 2-3x the budget: 17 s p99 with 5 s in
`python -m bench.logs`), retries while the store is down, a record the store refuses for its
content set aside in the signal's dead letter after bounded attempts (the ones behind it go
on), and `flush`. Replay after a crash stores nothing twice when the store's write is
idempotent, which each signal's store is.

A signal may also bring `write_many`: the writer then hands it up to `group` records read
together (what is in the spool when the writer comes round: one when it keeps up, more when
it is behind), in one store write, and moves the checkpoint past them all; should that write
fail, the records go one by one through `write` and its retries, as without it. With
`linger_s`, a writer that has caught up waits that long after a write began before the next
(`flush` and `stop` cut the wait short), so that what arrives meanwhile is written together:
a store whose writes cost much per write (DuckDB's logs: a 500-record write costs ~3x more
per record than a 4,000-record one) then spends its time on records, not on writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from watchkeeper.config import IngestConfig
from watchkeeper.errors import Overloaded, StoreError
from watchkeeper.ingest._admission import Admission
from watchkeeper.ingest._commit import GroupCommitter
from watchkeeper.ingest._dead_letter import DeadLetter
from watchkeeper.ingest._spool import Entry, Position, Record, Spool

log = logging.getLogger("watchkeeper.ingest")

_READ_CHUNK = 4 * 1024 * 1024
_RETRY_MAX_S = 5.0
_DATA_ATTEMPTS = 3  # failed writes of one record, not the store's fault, before it is set aside
_PACE_GROUPS = 16  # the writer's pace is measured over its last groups written

T = TypeVar("T")


class SpooledWriter(Generic[T]):
    """One signal's spool, committer and writer thread; see the module docstring."""

    def __init__(
        self,
        signal: str,
        data_dir: Path,
        cfg: IngestConfig,
        *,
        decode: Callable[[Record], T],
        write: Callable[[Record, T], None],
        on_write_error: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        write_many: Callable[[list[tuple[Record, T]]], None] | None = None,
        group: int = 16,
        linger_s: float = 0.0,
        idle: Callable[[], None] = lambda: None,
    ) -> None:
        self._signal = signal  # "metric", "log": in messages, paths and the thread's name
        self._cfg = cfg
        self._decode = decode
        self._write = write
        self._write_many = write_many
        self._group = group if write_many is not None else 1
        self._linger_s = linger_s
        self._hurry = threading.Event()  # flush or stop: no lingering
        self._on_write_error = on_write_error
        self._idle = idle  # the writer thread's upkeep while it has nothing to write
        self.spool = Spool(
            data_dir / f"spool-{signal}s", segment_bytes=cfg.spool_segment_bytes, clock=clock
        )
        self._committer = GroupCommitter(self.spool, group_commit_s=cfg.group_commit_ms / 1e3)
        self.dead_letter = DeadLetter(data_dir / f"dead-letter-{signal}s")
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._written = threading.Condition()
        self._admission = Admission(
            self.spool, cfg, batches=_PACE_GROUPS, clock=clock, what=f"{signal} "
        )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (recovering it) and start the committer and the writer."""
        if self._thread is not None:
            return
        self.spool.open()
        self._committer.start()
        self._stopping.clear()
        name = f"wk-{self._signal}s-write"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse new requests, store everything spooled, and stop."""
        if self._thread is None:
            return
        self._committer.stop()
        self._stopping.set()
        self._hurry.set()
        self._thread.join()
        self._thread = None
        self.spool.close()

    # --- the request path -------------------------------------------------------------------

    def admit(self) -> None:
        """`Overloaded` (503 with Retry-After) when not running, or when the backlog is past
        its bound in bytes or in age."""
        if self._thread is None:
            raise Overloaded("ingest is not running (starting or stopping); retry shortly", 1.0)
        self._admission.check()

    async def append(self, entry: Entry) -> None:
        """Spool a record; return once it is on disk (`Overloaded` when the queue is full)."""
        (fut,) = self._committer.submit(entry)
        await asyncio.wrap_future(fut)

    def flush(self, timeout: float) -> bool:
        """Block until everything acknowledged so far is stored; False on timeout."""
        if self._thread is None:
            return True
        target = self.spool.end
        self._hurry.set()
        deadline = time.monotonic() + timeout
        with self._written:
            while not self.spool.is_stored(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._written.wait(min(remaining, 0.05))
        return True

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        cursor = self.spool.checkpoint
        began = float("-inf")  # when the last write began
        while True:
            stopping = self._stopping.is_set()
            group: list[Record] = []
            for rec in self.spool.read(cursor, _READ_CHUNK):
                group.append(rec)
                if len(group) >= self._group:
                    began = time.monotonic()
                    if not self._store_group(group):
                        return  # stopping while the store fails: the spool replays it
                    cursor = self._stored(group[-1])
                    group = []
            if group:
                began = time.monotonic()
                if not self._store_group(group):
                    return
                cursor = self._stored(group[-1])
            caught_up = not self.spool.has_after(cursor)
            if stopping and caught_up:
                return
            if caught_up:
                try:
                    self._idle()
                except Exception:  # upkeep is retried when next idle; writing goes on
                    log.exception("%s writer: upkeep failed", self._signal)
                self._linger(began)
            self.spool.wait_for(cursor, 0.05)

    def _linger(self, began: float) -> None:
        """Wait until `linger_s` after the last write began, unless hurried."""
        wait = began + self._linger_s - time.monotonic()
        if wait > 0:
            self._hurry.wait(wait)
        self._hurry.clear()  # a flush or stop: its records are in the spool, read next

    def _stored(self, last: Record) -> Position:
        """Move the checkpoint past `last` and wake `flush`."""
        self.spool.set_checkpoint(last.end)
        with self._written:
            self._written.notify_all()
        return last.end

    def _store_group(self, group: list[Record]) -> bool:
        """`_store_records`, its time counted in the writer's pace when more records were
        waiting (a write of a few records says more about a write's fixed cost than about
        the pace a backlog goes at: the first, small write to a new store gave a pace that
        refused the next large request)."""
        started = time.monotonic()
        done = self._store_records(group)
        if self.spool.has_after(group[-1].end):
            self._admission.pace.add(
                sum(len(rec.body) for rec in group), time.monotonic() - started
            )
        return done

    def _store_records(self, group: list[Record]) -> bool:
        """Decode and write records read together: in one `write_many` when there are
        several, else (or should it fail) one by one; False only when stopping interrupts
        retries."""
        decoded = [(rec, d) for rec in group if (d := self._decoded(rec)) is not None]
        if len(group) > 1 and self._write_many is not None and decoded:
            try:
                self._write_many(decoded)
                return True
            except Exception as exc:  # each on its own now, with the retries of one
                self._on_write_error()
                log.warning("%s store write of %d records failed: %s; writing them one "
                            "by one", self._signal, len(decoded), exc)  # fmt: skip
        return all(self._store(rec, d) for rec, d in decoded)

    def _decoded(self, rec: Record) -> T | None:
        """The record decoded; None (set aside in the dead letter) when it cannot be."""
        try:
            return self._decode(rec)
        except Exception as exc:  # validated before it was spooled: a corrupt record
            log.error("%s spool record before %s cannot be decoded: %s", self._signal, rec.end, exc)
            self.dead_letter.add(rec, f"decode_error: {exc}")
            return None

    def _store(self, rec: Record, decoded: T) -> bool:
        """Write one decoded record; False only when stopping interrupts retries."""
        delay, refused = 0.1, 0
        while True:
            try:
                self._write(rec, decoded)
                return True
            except Exception as exc:
                self._on_write_error()
                if not isinstance(exc, (StoreError, OSError, MemoryError)):
                    refused += 1
                if refused >= _DATA_ATTEMPTS:
                    log.error(
                        "the %s store refused the record before %s: %s", self._signal, rec.end, exc
                    )
                    self.dead_letter.add(rec, f"store_refused: {exc}")
                    return True
                log.error("%s store write failed; retrying: %s", self._signal, exc)
                if self._stopping.is_set():
                    return False
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)


class SpooledSignal:
    """The ingest object of a signal over its `SpooledWriter` (`_pipe`, set by the
    subclass): the lifecycle, the spool and the dead letter, the same for every signal."""

    _pipe: SpooledWriter[Any]

    @property
    def spool(self) -> Spool:
        """The signal's spool."""
        return self._pipe.spool

    @property
    def dead_letter(self) -> DeadLetter:
        """Where records the store refuses are set aside."""
        return self._pipe.dead_letter

    def start(self) -> None:
        """Open the spool (recovering it) and start the committer and the writer."""
        self._pipe.start()

    def stop(self) -> None:
        """Refuse new requests, store everything spooled, and stop."""
        self._pipe.stop()

    def flush(self, timeout: float) -> bool:
        """Block until everything acknowledged so far is stored; False on timeout."""
        return self._pipe.flush(timeout)
