"""Ingest's worker processes, whatever they work on (spans, log records).

`spawn_pool` starts them (never by fork), `start_child` is what each does first (ignore
Ctrl-C, die with the server, tune the GC and the allocator), and `Idle` tells when a pool
went unused long enough to be stopped (each worker is tens of MiB).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from watchkeeper.ingest._gc import tune_gc
from watchkeeper.malloc import tune_malloc

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def spawn_pool(
    workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> ProcessPoolExecutor:
    """`workers` processes started fresh: never forked, the server runs threads (committer,
    writer, DuckDB's own) whose locks a fork would copy held. `initializer` must call
    `start_child` with the server's pid."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )


class Idle:
    """When a pool was last used, and whether it has gone unused for `idle_s` (None: never)."""

    def __init__(self, idle_s: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self._clock = clock
        self._used_at = clock()

    def used(self) -> None:
        """The pool was used now."""
        self._used_at = self._clock()

    def over(self, busy: bool) -> bool:
        """True when nothing is `busy` and `idle_s` went by since the last use."""
        if busy or self.idle_s is None:
            return False
        return self._clock() - self._used_at >= self.idle_s


def start_child(parent: int) -> None:
    """Set up a worker process of the server whose pid is `parent`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    if not _die_with_parent(parent):
        threading.Thread(target=_exit_with, args=(parent,), name="wk-parent", daemon=True).start()
    tune_gc()
    tune_malloc()


def _die_with_parent(parent: int) -> bool:
    """Ask Linux to kill this worker the moment the server dies (prctl PR_SET_PDEATHSIG).

    A server killed with SIGKILL cannot stop its pool, and the worker holds both ends of its
    task queue, so it would wait forever; polling for the parent left workers (and, through
    their inherited pipe, the resource tracker) alive for up to a second. False where prctl
    is not available (then `_exit_with` polls).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the server died before prctl took effect
        os._exit(0)
    return True


def _exit_with(parent: int) -> None:
    """Leave once the parent is gone (where `_die_with_parent` cannot be had)."""
    while os.getppid() == parent:
        time.sleep(0.1)
    os._exit(0)
