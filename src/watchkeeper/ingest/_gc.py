"""The cyclic garbage collector tuned for the processes that decode (server and workers);
their C allocator is tuned in `watchkeeper.malloc`."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Make the cyclic GC cheap for a process that decodes millions of objects a minute.

    With CPython's default thresholds, a full collection runs every ~70k allocations and
    walks the whole heap; decoding a 512-span request allocates that many, so most of the
    decode time went to the GC (measured: 28 µs/span with defaults, 8 µs after). Objects of
    the ingest path are acyclic and freed by reference counting, so collecting rarely is
    safe; objects alive at start-up are frozen out of collections altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
