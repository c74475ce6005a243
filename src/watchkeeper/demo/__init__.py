"""The demo: a sample AI service on the SDK, fake LLM providers and a load generator.

`watchkeeper demo` runs it next to the server; `run_demo(server_url, ..., stop_event=...)` runs
it from Python (a test). The service and its dependencies load on first use, so importing
`watchkeeper.demo.fake_providers` alone stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DemoOptions",
    "DemoResult",
    "free_port",
    "local_redis",
    "main",
    "run_demo",
    "schedule_from_env",
    "scrape_jobs",
    "write_server_config",
]

_LAZY = {
    "DemoOptions": "watchkeeper.demo._service",
    "DemoResult": "watchkeeper.demo._run",
    "free_port": "watchkeeper.demo._infra",
    "local_redis": "watchkeeper.demo._infra",
    "main": "watchkeeper.demo._run",
    "run_demo": "watchkeeper.demo._run",
    "schedule_from_env": "watchkeeper.demo._scenario",
    "scrape_jobs": "watchkeeper.demo._infra",
    "write_server_config": "watchkeeper.demo._scenario",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'watchkeeper.demo' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
