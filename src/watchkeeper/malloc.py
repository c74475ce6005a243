"""The C allocator (glibc) of the server's processes: tuned for the ingest's large blocks,
its free pages given back, and what its heap holds. Elsewhere (musl, macOS) each does nothing.

At the bottom of the layers: the store gives pages back after it frees its engine's
metadata, the ingest tunes its processes, the server shows the heap on `/metrics`."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

#: glibc's mallopt parameters (<malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up get pages of their own, returned to the system when freed.
MMAP_THRESHOLD = 256 * 1024
#: Free memory at the top of the heap past this is returned at once.
TRIM_THRESHOLD = 1024 * 1024


def tune_malloc() -> bool:
    """Make glibc's allocator give large blocks back when they are freed; False elsewhere.

    Request bodies, spool reads and workers' results are hundreds of kilobytes to megabytes
    each. By default glibc raises its mmap threshold (up to 32 MiB) the first time such a
    block is freed, so later ones come from the heap, where a few small objects allocated
    between them keep the pages from being returned: the server stayed ~50 MiB larger
    after each burst (bench.ingest: 446 → 403 MiB after 1M spans, with its workers; peak
    622 → 576). Fixed thresholds keep those blocks out of the heap.
    """
    if _mallopt is None:
        return False
    return bool(
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def trim_malloc() -> None:
    """Return the C allocator's free pages to the system (glibc; elsewhere nothing)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class _MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (<malloc.h>, glibc 2.33+)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def malloc_bytes() -> tuple[int, int] | None:
    """The C heap now, over every arena: (bytes in use, blocks of their own counted; bytes
    free but kept by the allocator). None where the allocator is not glibc 2.33+.

    What the engine's memory limit does not bound lands here: DuckDB's metadata of each row
    group, Python's objects over 512 bytes, the extensions' buffers."""
    if _mallinfo2 is None:
        return None
    info = _mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        fn: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return fn


def _find_mallopt() -> Callable[[int, int], int] | None:
    try:
        fn: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return None
    return fn


def _find_mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return None
    fn.restype = _MallInfo2
    found: Callable[[], _MallInfo2] = fn
    return found


_malloc_trim = _find_malloc_trim()
_mallinfo2 = _find_mallinfo2()
_mallopt = _find_mallopt()
