"""Cache hit/miss accounting: a counter per cache name, and an event on the current span."""

from __future__ import annotations

from opentelemetry import trace

from watchkeeper.sdk import _runtime
from watchkeeper.sdk._safe import report_failure


def count_cache(name: str, hit: bool) -> None:
    """Count one lookup in cache `name` (a low-cardinality name, e.g. "answers")."""
    rt = _runtime._current
    if rt is None:
        return
    try:
        rt.metrics.cache_requests.labels(name, "hit" if hit else "miss").inc()
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("cache", {"watchkeeper.cache.name": name, "watchkeeper.cache.hit": hit})
    except Exception as exc:
        report_failure("count_cache", exc)
