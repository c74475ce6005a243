"""Watchkeeper: self-hosted observability for AI services.

`import watchkeeper` gives the SDK (`init`, `observe`, `context`, `guard`, …). The server lives
in `watchkeeper.server` and is never imported from here, so instrumenting an app stays light.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.sdk import (
    Breaker,
    CircuitOpen,
    GuardEvent,
    GuardTimeout,
    ObservedSpan,
    WatchkeeperMiddleware,
    context,
    count_cache,
    flush,
    guard,
    init,
    metrics_app,
    observe,
    registry,
    shutdown,
)

__all__ = [
    "Breaker",
    "CircuitOpen",
    "GuardEvent",
    "GuardTimeout",
    "JsonFormatter",
    "ObservedSpan",
    "WatchkeeperMiddleware",
    "context",
    "count_cache",
    "feedback",
    "flush",
    "guard",
    "init",
    "instrument_anthropic",
    "instrument_openai",
    "metrics_app",
    "observe",
    "registry",
    "shutdown",
]


def __getattr__(name: str) -> Any:
    # The SDK's lazily loaded names (`feedback`, the client wrappers) load on first use here too.
    from watchkeeper import sdk

    if name in sdk._LAZY:
        return getattr(sdk, name)
    raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
