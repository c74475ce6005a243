"""Watches sync guarded calls that run inline (`sync_mode="inline"`), in the caller's thread.

An inline call cannot be cut at its deadline, but its guard can still react at once: when the
deadline of a call that is still running passes, the watchdog fires the guard's `on_timeout`
(an alert, a log line) even if the stuck call never returns. The watchdog sleeps while no
inline call is in flight; it holds only in-flight calls, so its memory is bounded by
concurrency. (The default, `sync_mode="thread"`, needs no watchdog: its caller waits on the
worker with a timeout.)
"""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol


class Watched(Protocol):
    """What the watchdog needs from a guarded call."""

    end_at: float

    def overran(self) -> None:
        """Called (once, from the watchdog thread) when the deadline passed mid-call."""


class Watchdog:
    """One daemon thread waking at the earliest deadline of the inline calls in flight."""

    def __init__(self) -> None:
        self.reset_after_fork()

    def reset_after_fork(self) -> None:
        """No thread and no calls in flight (a forked child has none of the parent's)."""
        self._lock = threading.Lock()  # `with` on the bare lock: cheaper than on the Condition
        self._cond = threading.Condition(self._lock)
        self._inflight: dict[int, Watched] = {}
        self._next_at = float("inf")  # when the thread wakes next (it may wake sooner)
        self._latest = float("-inf")  # the latest deadline of any call watched so far
        self._thread: threading.Thread | None = None

    def enter(self, call: Watched) -> None:
        """Watch `call` until `leave(call)`.

        Without the lock unless the thread must start or wake sooner. The thread marks
        `_next_at` -inf while it looks at the calls, so a call entering then takes the lock and
        looks again once the thread has chosen when to wake (see `_run`).
        """
        self._inflight[id(call)] = call  # a dict store is atomic under the GIL
        end_at = call.end_at
        if end_at > self._latest:  # racy between callers: it only sets the idle wake-up
            self._latest = end_at
        if end_at < self._next_at or self._thread is None:
            self._wake_for(end_at)

    def _wake_for(self, end_at: float) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="watchkeeper-watchdog", daemon=True
                )
                self._thread.start()
            if end_at < self._next_at:  # the thread must wake sooner: it looks again now
                self._next_at = end_at
                self._cond.notify()

    def leave(self, call: Watched) -> None:
        """Stop watching `call` (it returned or raised)."""
        self._inflight.pop(id(call), None)  # a dict pop is atomic under the GIL

    def _run(self) -> None:
        while True:
            with self._cond:
                self._next_at = float("-inf")  # looking: entering calls wait for the lock
                now = time.monotonic()
                # A copy first: `leave` pops without the lock, which would break an iteration
                # (list() of a dict's values runs without a thread switch under the GIL).
                inflight = list(self._inflight.values())
                due = [c for c in inflight if c.end_at <= now]
                for call in due:
                    self._inflight.pop(id(call), None)
                pending = [c.end_at for c in inflight if c.end_at > now]
                # With no call in flight, still wake at the latest deadline handed out: calls
                # that keep coming are each due after it, so they need not wake this thread
                # (which, woken by every call, would compete with it for the GIL).
                if self._latest > now:
                    pending.append(self._latest)
                self._next_at = min(pending, default=float("inf"))
                if not due:
                    wait = None if not pending else max(self._next_at - now, 0.0)
                    self._cond.wait(wait)
                    continue
            for call in due:  # outside the lock: callbacks are app code
                call.overran()


#: The process's watchdog (its thread starts with the first inline guarded call).
WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG.reset_after_fork)
