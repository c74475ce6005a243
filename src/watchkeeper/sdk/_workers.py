"""A small bounded pool of daemon threads that runs sync guarded calls needing a deadline.

A thread cannot be killed: when a call overruns its deadline the guard stops waiting and the
call is abandoned, still running on its worker until it returns by itself. The threads are
daemons so an abandoned call never holds up interpreter exit, and both the threads and the
queue are bounded: when every worker is stuck and the queue is full, calls are refused
(`CircuitOpen`) rather than piling up.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from watchkeeper.errors import CircuitOpen, GuardTimeout


class Workers:
    """Runs callables on up to `max_workers` threads with at most `max_queue` waiting."""

    def __init__(self, max_workers: int = 32, max_queue: int = 64) -> None:
        self.max_workers = max_workers
        self.max_queue = max_queue
        self.reset_after_fork()

    def reset_after_fork(self) -> None:
        """Start with no threads and an empty queue (a forked child has none of the parent's)."""
        self._queue: queue.Queue[tuple[Future[Any], Callable[[], Any]]] = queue.Queue(
            self.max_queue
        )
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def call(self, fn: Callable[..., Any], args: Any, kwargs: Any, timeout: float) -> Any:
        """Run `fn(*args, **kwargs)` on a worker; wait at most `timeout` seconds for it."""
        ctx = contextvars.copy_context()  # the worker sees the caller's current span
        future: Future[Any] = Future()
        try:
            self._queue.put_nowait((future, lambda: ctx.run(fn, *args, **kwargs)))
        except queue.Full:
            raise CircuitOpen(
                f"all {self.max_workers} guard worker threads are busy and the queue is full "
                "(calls that overran their deadline are still running)"
            ) from None
        self._maybe_start_thread()
        try:
            return future.result(timeout=max(timeout, 0.0))
        except TimeoutError:
            if future.done():  # the call itself raised TimeoutError
                raise
            future.cancel()  # dropped if it never started; abandoned if it is running
            raise GuardTimeout(f"no answer within {timeout:.3f}s") from None

    def _maybe_start_thread(self) -> None:
        with self._lock:
            if self._queue.qsize() <= self._idle or self._threads >= self.max_workers:
                return
            self._threads += 1
            self._idle += 1
        threading.Thread(target=self._run, name="watchkeeper-guard", daemon=True).start()

    def _run(self) -> None:
        while True:
            future, job = self._queue.get()
            with self._lock:
                self._idle -= 1
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:  # handed to the waiting caller, never lost
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1


#: The process's guard workers (threads start on first need).
WORKERS = Workers()
os.register_at_fork(after_in_child=WORKERS.reset_after_fork)
