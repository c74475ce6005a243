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

_LAZY = ("feedback", "instrument_anthropic", "instrument_openai")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from watchkeeper import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
