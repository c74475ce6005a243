"""Async deadlines with one timer per event loop, for guarded awaits.

`asyncio.timeout` schedules and cancels a timer for every block it guards, about 3.5 µs on a
call that answers at once: most of a guard's budget. Guarded calls mostly answer long before
their deadline, and calls that share a deadline start in the order they end, so here one timer
per loop waits for the earliest deadline still watched. A call that answers only leaves a dict;
when the timer finds its call already gone, it waits for the next one (with sequential 8 s
calls: one wake-up per 8 s).

A watch that expires cancels its task, as `asyncio.timeout` does, and `Watch.end` tells that
cancellation apart from one asked for by anybody else (`Task.cancelling`/`uncancel`), so the
guard turns only its own into a timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable


class Watch:
    """One guarded await's deadline on its task."""

    __slots__ = ("_cancelling", "_loop_deadlines", "end_at", "expired", "task")

    def __init__(self, deadlines: LoopDeadlines, task: asyncio.Task[object], end_at: float):
        self._loop_deadlines: LoopDeadlines | None = deadlines
        self._cancelling = task.cancelling()
        self.task = task
        self.end_at = end_at  # on the loop's clock
        self.expired = False

    def end(self) -> bool:
        """Stop watching (once). True when this watch's expiry is what cancelled the task and
        nobody else has asked to cancel it: the caller should report a timeout."""
        deadlines, self._loop_deadlines = self._loop_deadlines, None
        if deadlines is None:
            return False
        deadlines.watches.discard(self)
        return self.expired and self.task.uncancel() <= self._cancelling


class LoopDeadlines:
    """The watches of one event loop, and the timer that expires them.

    It keeps when its timers will run, not their handles: a handle refers to the loop, and
    the loop is this object's weak key.
    """

    __slots__ = ("__weakref__", "_loop_time", "_next_timer", "_timers", "watches")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.watches: set[Watch] = set()
        self._timers: set[float] = set()  # loop times at which a timer of ours will run
        self._next_timer = float("inf")
        # The loop's clock. asyncio's own loops read time.monotonic: read it here directly.
        # Another loop's `time` is kept unbound, as a bound method would hold the loop.
        loop_time = type(loop).time
        self._loop_time: Callable[[asyncio.AbstractEventLoop], float] | None = (
            None if loop_time is asyncio.BaseEventLoop.time else loop_time
        )

    def watch(self, loop: asyncio.AbstractEventLoop, seconds: float) -> Watch:
        """Cancel the current task if it is still watched `seconds` from now."""
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a guarded await must run inside an asyncio task")
        now = time.monotonic() if self._loop_time is None else self._loop_time(loop)
        w = Watch(self, task, now + seconds)
        self.watches.add(w)
        if w.end_at < self._next_timer:
            self._schedule(loop, w.end_at)
        return w

    def _schedule(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        self._timers.add(at)
        self._next_timer = min(self._next_timer, at)
        loop.call_at(at, self._expire, loop, at)

    def _expire(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        self._timers.discard(at)
        self._next_timer = min(self._timers, default=float("inf"))
        # The loop runs a timer once its time is within the clock's resolution of it: what
        # was due by the timer's own time is due now.
        due_by = max(loop.time(), at)
        pending = float("inf")
        for w in list(self.watches):
            if w.end_at <= due_by:
                self.watches.discard(w)
                w.expired = True
                w.task.cancel()
            else:
                pending = min(pending, w.end_at)
        if pending < self._next_timer:
            self._schedule(loop, pending)


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopDeadlines] = (
    weakref.WeakKeyDictionary()
)
_BY_LOOP_LOCK = threading.Lock()
# The loop last watched on (weakly) and its deadlines: a process nearly always runs one loop,
# and this skips the weak dictionary's lookup. Threads with loops of their own just miss it.
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], LoopDeadlines] | None = None


def watch(seconds: float) -> Watch:
    """Watch the current task for `seconds` (call `Watch.end` when the await is over)."""
    global _last
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0]() is loop:
        return last[1].watch(loop, seconds)
    deadlines = _BY_LOOP.get(loop)
    if deadlines is None:
        with _BY_LOOP_LOCK:
            deadlines = _BY_LOOP.setdefault(loop, LoopDeadlines(loop))
    _last = (weakref.ref(loop), deadlines)
    return deadlines.watch(loop, seconds)
