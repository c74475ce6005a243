"""The server process's C heap on `/metrics`: the memory no engine limit bounds."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watchkeeper.malloc import malloc_bytes


class _Heap(Collector):
    """`watchkeeper_process_malloc_bytes{state}`, from one reading of the allocator per
    scrape (each reading walks every arena)."""

    def collect(self) -> Iterator[Metric]:
        heap = malloc_bytes()
        if heap is None:
            return
        family = GaugeMetricFamily(
            "watchkeeper_process_malloc_bytes",
            "The server process's C heap (glibc malloc, every arena): bytes in use, and bytes "
            "free (held by the allocator, or trimmed but still counted by it).",
            labels=["state"],
        )
        family.add_metric(["in_use"], heap[0])
        family.add_metric(["free"], heap[1])
        yield family


def watch_heap(registry: CollectorRegistry) -> None:
    """`watchkeeper_process_malloc_bytes{state}`: bytes the C allocator has handed out
    (`in_use`) and holds free (`free`), read at each scrape; nothing where the allocator
    cannot say (not glibc 2.33+).

    Beside `process_resident_memory_bytes` and `watchkeeper_store_memory_bytes`, it tells an
    operator whether a growing server is the engine's cache (bounded by its limit), the
    C heap in use (the engine's metadata grows with the data it keeps), or the allocator's
    fragmentation (free but held)."""
    if malloc_bytes() is not None:
        registry.register(_Heap())
