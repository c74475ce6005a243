"""A bounded pool of daemon threads that runs sync guarded calls, so the caller can stop
waiting at the deadline.

A thread cannot be killed: when a call overruns its deadline the caller stops waiting and the
call is abandoned, still running on its worker until it returns by itself (then the worker
is free again). The threads are daemons, so an abandoned call never holds up interpreter exit.
There is no queue: a call starts on an idle worker or a new one at once, and when all
`max_workers` threads are busy (live calls, or abandoned ones still running) the call is
refused at once (`CircuitOpen`: outcome rejected, fallbacks still answer) instead of waiting
for a thread past its deadline. Abandoned calls are counted per guard name
(`watchkeeper_guard_abandoned_threads`, `watchkeeper_guard_abandoned_calls_total`).

The hand-off is two plain locks, not a `Future` on a `queue.Queue` (each a Condition over a
lock): every idle worker sleeps on a lock of its own, and the caller waits on the call's lock
with its timeout. That is one wake-up each way, about half the cost of the executor's path.
"""

from __future__ import annotations

import contextvars
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from watchkeeper.errors import CircuitOpen, GuardTimeout


class _Job:
    """One call handed to a worker, and how it ended."""

    __slots__ = ("args", "claim", "ctx", "done", "error", "fn", "kwargs", "name", "result")

    def __init__(self, fn: Callable[..., Any], args: Any, kwargs: Any, name: str) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.name = name
        self.ctx = contextvars.copy_context()  # the worker sees the caller's current span
        self.done = threading.Lock()
        self.done.acquire()  # released by the worker when the call has ended
        # Whoever pops it first decides: the worker (the call ended in time) or the caller
        # (it stopped waiting: the call is abandoned). `list.pop` is atomic.
        self.claim = [None]
        self.result: Any = None
        self.error: BaseException | None = None


class _Worker:
    """A worker thread's mailbox: the job it is given and the lock it sleeps on."""

    __slots__ = ("job", "wake")

    def __init__(self, job: _Job) -> None:
        self.job: _Job | None = job
        self.wake = threading.Lock()
        self.wake.acquire()


class Workers:
    """Runs callables on up to `max_workers` daemon threads; never queues."""

    def __init__(self, max_workers: int = 64) -> None:
        self.max_workers = max_workers
        self.reset_after_fork()
        _ALL.add(self)

    def reset_after_fork(self) -> None:
        """No threads and no calls (a forked child has none of the parent's)."""
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # LIFO: the most recently used thread is warmest
        self.threads = 0
        self.abandoned: dict[str, int] = {}  # guard name -> abandoned calls still running
        self.abandoned_total: dict[str, int] = {}

    def call(
        self, fn: Callable[..., Any], args: Any, kwargs: Any, timeout: float, name: str = ""
    ) -> Any:
        """Run `fn(*args, **kwargs)` on a worker; wait at most `timeout` seconds for it.

        Raises `GuardTimeout` when it has not answered by then, `CircuitOpen` when every
        thread is busy.
        """
        job = _Job(fn, args, kwargs, name)
        try:
            worker = self._idle.pop()
        except IndexError:
            self._start(job)
        else:
            worker.job = job
            worker.wake.release()
        if not job.done.acquire(True, max(timeout, 0.0)):
            if self._abandon(job):
                raise GuardTimeout(f"no answer within {timeout:.3f}s") from None
            job.done.acquire()  # it ended just now, as we gave up: take its answer
        if job.error is not None:
            error, job.error = job.error, None  # no cycle through the traceback
            raise error
        return job.result

    def _start(self, job: _Job) -> None:
        with self._lock:
            if self.threads >= self.max_workers:
                stuck = sum(self.abandoned.values())
                raise CircuitOpen(
                    f"all {self.max_workers} guard worker threads are busy ({stuck} of them "
                    "still running calls abandoned at their deadline)"
                )
            self.threads += 1
        worker = _Worker(job)
        worker.wake.release()
        name = f"watchkeeper-guard-{self.threads}"
        try:
            threading.Thread(target=self._run, args=(worker,), name=name, daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": the process's limit
            with self._lock:
                self.threads -= 1
            raise CircuitOpen(f"no guard worker thread could be started ({exc})") from None

    def _abandon(self, job: _Job) -> bool:
        """Give up on `job`; False if it ended first. Counted under the lock, so a worker that
        then finds the job abandoned (and takes the lock to say so) sees the count."""
        with self._lock:
            try:
                job.claim.pop()
            except IndexError:
                return False
            name = job.name
            self.abandoned[name] = self.abandoned.get(name, 0) + 1
            self.abandoned_total[name] = self.abandoned_total.get(name, 0) + 1
            return True

    def _run(self, worker: _Worker) -> None:
        idle, wake = self._idle, worker.wake
        while True:
            wake.acquire()
            job, worker.job = worker.job, None
            assert job is not None  # a worker is woken only with a job
            try:
                job.result = job.ctx.run(job.fn, *job.args, **job.kwargs)
            except BaseException as exc:  # handed to the waiting caller, never lost
                job.error = exc
            try:
                job.claim.pop()
            except IndexError:  # its caller gave up on it: this thread is free again
                with self._lock:
                    self.abandoned[job.name] -= 1
                idle.append(worker)
                continue
            # Idle again before the caller wakes, so its next call finds this thread.
            idle.append(worker)
            job.done.release()

    def busy(self) -> int:
        """Threads running a call now (abandoned ones included)."""
        return self.threads - len(self._idle)


_ALL: weakref.WeakSet[Workers] = weakref.WeakSet()


def all_workers() -> Iterator[Workers]:
    """Every pool in the process (for the metrics read when scraped)."""
    return iter(list(_ALL))


#: The process's guard workers (threads start on first need).
WORKERS = Workers()
os.register_at_fork(after_in_child=WORKERS.reset_after_fork)
