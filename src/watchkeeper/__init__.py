"""Watchkeeper: self-hosted observability for AI services.

`import watchkeeper` gives the SDK (`init`, `observe`, `context`, `guard`, …), loaded when a
name is first used. The server lives in `watchkeeper.server` and is never imported from here,
so instrumenting an app stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchkeeper.sdk import (
        Breaker,
        CircuitOpen,
        GuardEvent,
        GuardTimeout,
        JsonFormatter,
        ObservedSpan,
        WatchkeeperMiddleware,
        context,
        count_cache,
        feedback,
        flush,
        guard,
        init,
        instrument_anthropic,
        instrument_openai,
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
    """The SDK's names load on first use (PEP 562): the server's packages and its ingest
    worker processes import `watchkeeper.<package>`, which runs this module, and the SDK
    (pydantic settings, asyncio, ssl) took 14 MiB in each worker for nothing."""
    if name in __all__:
        from watchkeeper import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
