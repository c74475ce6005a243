"""What the server measures of its span store: query latency by kind, the time of each part
of its writes, the engine's memory."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from prometheus_client import CollectorRegistry, Gauge, Histogram

from watchkeeper.errors import StoreError
from watchkeeper.store import Store


def watch_store(store: Store, registry: CollectorRegistry) -> None:
    """Time the store's queries into a histogram by kind, its writes by part; expose its
    engine's memory (where the store can say it, as DuckDB's can)."""
    seconds = Histogram(
        "watchkeeper_store_query_seconds",
        "Latency of store queries, by kind.",
        ["query"],
        registry=registry,
    )

    def timer(kind: str) -> AbstractContextManager[object]:
        return seconds.labels(kind).time()

    writing = Histogram(
        "watchkeeper_store_write_seconds",
        "Time inside the parts of the store's writes (the engine names them: DuckDB's are "
        "arrow, replay, contexts, spans, rollups, merge, payloads, commit).",
        ["part"],
        registry=registry,
    )

    def write_timer(part: str) -> AbstractContextManager[object]:
        return writing.labels(part).time()

    store.timer, store.write_timer = timer, write_timer
    memory_bytes: Callable[[], int] | None = getattr(store, "memory_bytes", None)
    if memory_bytes is not None:
        Gauge(
            "watchkeeper_store_memory_bytes",
            "Memory the store engine holds now (DuckDB: its buffer pool and the rest).",
            registry=registry,
        ).set_function(lambda: _measured(memory_bytes))


def _measured(memory_bytes: Callable[[], int]) -> float:
    try:
        return float(memory_bytes())
    except StoreError:  # closed or failing: the scrape still answers
        return float("nan")
