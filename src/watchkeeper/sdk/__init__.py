"""The Watchkeeper SDK: what an app imports to instrument itself (re-exported by `watchkeeper`).

It imports only `watchkeeper.model`/`errors`, OpenTelemetry and prometheus-client, never a
server dependency. The LLM client wrappers and `feedback` load on first use.

    import watchkeeper

    watchkeeper.init("support-bot", endpoint="http://127.0.0.1:4318", capture_content=True)
    app.add_middleware(watchkeeper.WatchkeeperMiddleware, deadline=8.0)   # FastAPI

    @watchkeeper.guard("answer", deadline=6.0, fallbacks=[cheaper_model, "Try again later."])
    @watchkeeper.observe("answer", kind="agent")
    async def answer(question: str) -> str:
        with watchkeeper.observe("chat", kind="llm") as span:
            span.set_model("gpt-4o-mini", provider="openai")
            ...
            span.set_usage(input_tokens=812, output_tokens=95)

    async with watchkeeper.context(user_id=user, session_id=session, feature="support"):
        await answer(question)

`init()` also sends the app's `logging` records (INFO and above, as far as the app's loggers
let them through) to the server's `/v1/logs` with the active span's trace and span ids;
`init(logs="off")` or `WATCHKEEPER_LOGS=off` turns that off.

Context (`context()`, the current span) follows `await` and asyncio tasks; a thread started by
the app starts without it unless the app copies it (`contextvars.copy_context().run`).
"""

from __future__ import annotations

import importlib
from typing import Any

from watchkeeper.errors import CircuitOpen, GuardTimeout
from watchkeeper.sdk._breaker import Breaker
from watchkeeper.sdk._cache import count_cache
from watchkeeper.sdk._context import context
from watchkeeper.sdk._guard import guard
from watchkeeper.sdk._guard_run import GuardEvent
from watchkeeper.sdk._middleware import WatchkeeperMiddleware, metrics_app
from watchkeeper.sdk._observe import observe
from watchkeeper.sdk._runtime import flush, init, registry, shutdown
from watchkeeper.sdk._span import ObservedSpan

# Public names defined in modules loaded lazily (they pull in more code).
_LAZY: dict[str, str] = {
    "instrument_openai": "watchkeeper.sdk._openai",
    "instrument_anthropic": "watchkeeper.sdk._anthropic",
    "feedback": "watchkeeper.sdk._feedback",
    "JsonFormatter": "watchkeeper.jsonlog",
    "flush_feedback": "watchkeeper.sdk._feedback",
}

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
    "flush_feedback",
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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'watchkeeper.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
