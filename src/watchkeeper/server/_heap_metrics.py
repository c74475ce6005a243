"""The server process's C heap on `/metrics`: the memory no engine limit bounds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from watchkeeper.malloc import malloc_bytes


def watch_heap(registry: CollectorRegistry) -> None:
    """`watchkeeper_process_malloc_bytes{state}`: bytes the C allocator has handed out
    (`in_use`) and holds free (`free`), read at each scrape; nothing where the allocator
    cannot say (not glibc 2.33+).

    Beside `process_resident_memory_bytes` and `watchkeeper_store_memory_bytes`, it tells an
    operator whether a growing server is the engine's cache (bounded by its limit), the
    C heap in use (the engine's metadata grows with the data it keeps), or the allocator's
    fragmentation (free but held)."""
    if malloc_bytes() is None:
        return
    gauge = Gauge(
        "watchkeeper_process_malloc_bytes",
        "The server process's C heap (glibc malloc, every arena): bytes in use, and free "
        "but held by the allocator.",
        ["state"],
        registry=registry,
    )
    gauge.labels("in_use").set_function(lambda: _read(0))
    gauge.labels("free").set_function(lambda: _read(1))


def _read(index: int) -> float:
    """One figure of the heap (0: in use, 1: free)."""
    heap = malloc_bytes()
    return float("nan") if heap is None else float(heap[index])
