"""What an ingest worker process does first, whatever it works on (spans, log records):
ignore Ctrl-C (the server stops it), die with the server, tune the GC and the allocator."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

from watchkeeper.ingest._gc import tune_gc, tune_malloc

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
