"""`Offload`: a pure function of a request run in a worker process, awaited by the event loop.

The log door decodes a request before it answers (400 for a body that is not one,
`partial_success` for records refused alone); in the server process that decode held the
interpreter's lock ~10 µs a record, on the thread that also serves HTTP, while the log
writer waited for the same lock (`python -m bench.logs`). Here it runs in a process of its
own and comes back as Arrow columns (a few buffers to unpickle, not an object per value).

The processes start with the first call (a fresh interpreter: about a second) and stop
after `idle_s` without one, as the span workers do (each is tens of MiB). A worker that
dies breaks the pool: it is replaced and the call made again once; a request that kills a
fresh worker too is refused (`DecodeError`), and the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._child import Idle, spawn_pool, start_child

log = logging.getLogger("watchkeeper.ingest")
T = TypeVar("T")


class Offload:
    """`workers` processes that run module-level functions for the event loop."""

    def __init__(
        self,
        workers: int,
        *,
        idle_s: float | None = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._workers = workers
        self._idle = Idle(idle_s, clock)  # idle_s None: they stay until `close`
        self._pool: ProcessPoolExecutor | None = None
        self._running = 0  # calls in flight
        self._timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> int:
        """Worker processes running now (0 before the first call and once idle)."""
        return 0 if self._pool is None else self._workers

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker; its exception is raised here."""
        self._running += 1
        try:
            try:
                return await self._call(fn, args)
            except BrokenProcessPool:
                log.error("a log decoder process died; starting another and decoding again")
                self._restart()
            try:
                return await self._call(fn, args)
            except BrokenProcessPool:
                self._restart()
                raise DecodeError("the request stopped its decoder process twice") from None
        finally:
            self._running -= 1
            self._idle.used()
            self._watch_idle()

    async def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._pool is None:
            self._pool = spawn_pool(self._workers, start_child, (os.getpid(),))
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _watch_idle(self) -> None:
        """Look for idleness `idle_s` after a call, and again until the workers stop (one
        timer at a time, on the event loop)."""
        if self._idle.idle_s is None or self._timer is not None or self._pool is None:
            return
        self._timer = asyncio.get_running_loop().call_later(self._idle.idle_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.retire_if_idle():
            self._watch_idle()

    def retire_if_idle(self) -> bool:
        """Stop the workers when no call came for `idle_s` and none is in flight; True if
        they were stopped."""
        if self._pool is None or not self._idle.over(busy=self._running > 0):
            return False
        self._pool.shutdown(wait=False)
        self._pool = None
        return True

    def close(self) -> None:
        """Stop the workers (from any thread; a pending idle timer then finds none)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
