"""Group commit: many concurrent requests share one write + fsync of the spool."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from watchkeeper.errors import Overloaded
from watchkeeper.ingest._spool import Entry, Position, Spool

log = logging.getLogger("watchkeeper.ingest")

_MAX_GROUP = 1024  # entries per fsync at most


class GroupCommitter:
    """A thread that appends submitted entries to the spool in groups, one fsync per group.

    `submit` returns a future resolved once the entry is on disk; the queue is bounded by
    count and by bytes, and a full queue raises `Overloaded` instead of growing.
    """

    def __init__(
        self,
        spool: Spool,
        *,
        group_commit_s: float,
        max_pending: int = 4096,
        max_pending_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._spool = spool
        self._wait_s = group_commit_s
        self._queue: queue.Queue[tuple[Entry, Future[Position]] | None] = queue.Queue(max_pending)
        self._max_bytes = max_pending_bytes
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="wk-spool-commit", daemon=True)
        self._closed = False

    def start(self) -> None:
        """Start the commit thread."""
        self._thread.start()

    def submit(self, *entries: Entry) -> list[Future[Position]]:
        """Queue entries (all or none); each future resolves after its entry's fsync.

        Raises `Overloaded` when the queue has no room for all of them.
        """
        futs: list[Future[Position]] = [Future() for _ in entries]
        size = sum(len(e.body) for e in entries)
        with self._lock:
            if self._closed:
                raise Overloaded("the server is shutting down; retry shortly", 1.0)
            full = self._pending_bytes + size > self._max_bytes and self._pending_bytes
            if full or self._queue.qsize() + len(entries) > self._queue.maxsize:
                raise Overloaded("the spool cannot keep up; retry shortly", 1.0)
            for entry, fut in zip(entries, futs, strict=True):
                self._queue.put_nowait((entry, fut))  # room checked above, under the lock
            self._pending_bytes += size
        return futs

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _collect(
        self, first: tuple[Entry, Future[Position]]
    ) -> tuple[list[Entry], list[Future[Position]], bool]:
        entries, futures = [first[0]], [first[1]]
        deadline = time.monotonic() + self._wait_s
        while len(entries) < _MAX_GROUP:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                return entries, futures, True
            entries.append(item[0])
            futures.append(item[1])
        return entries, futures, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            entries, futures, stopping = self._collect(first)
            # A request cancelled while it waited (its client went away) is written all the
            # same (replay is idempotent) but not answered: answering a cancelled future
            # raises, and that killed this thread, leaving every later request waiting.
            # Marked running here, a future can no longer be cancelled under us.
            futures = [fut for fut in futures if fut.set_running_or_notify_cancel()]
            try:
                end = self._spool.append(entries)
            except Exception as exc:  # disk full, I/O error: fail these requests, keep going
                log.exception("spool append failed")
                for fut in futures:
                    fut.set_exception(Overloaded(f"the spool cannot write: {exc}", 5.0))
            else:
                for fut in futures:
                    fut.set_result(end)
            with self._lock:
                self._pending_bytes -= sum(len(e.body) for e in entries)
