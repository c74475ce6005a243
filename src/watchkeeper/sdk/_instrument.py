"""Patching provider clients: which resources of a client to trace, and how to hook them.

An instance, a client class or the provider's module can be patched (a module or class covers
every client made from it); each method is wrapped once (`WRAPPED` marks wrappers), and copies
of a patched instance (`with_options`, `copy`) come out patched too.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.sdk._llm import WRAPPED, Adapter, hook_attempts, wrap_async, wrap_sync
from watchkeeper.sdk._safe import report_failure


@dataclass(frozen=True)
class Resource:
    """A client resource to trace: where it hangs on a client, its classes, its methods."""

    path: str  # attribute path on a client, e.g. "chat.completions"
    module: str
    sync_class: str
    async_class: str
    adapter: Adapter
    methods: tuple[str, ...] = ("create",)


def patch_method(owner: Any, name: str, adapter: Adapter, is_async: bool) -> bool:
    """Replace `owner.<name>` (on an instance or a class) with its traced version, once."""
    original = getattr(owner, name, None)
    if original is None or getattr(original, WRAPPED, False):
        return False
    wrapped = wrap_async(original, adapter) if is_async else wrap_sync(original, adapter)
    setattr(owner, name, wrapped)
    return True


def instrument_resources(
    target: Any,
    resources: Sequence[Resource],
    provider: str,
    extra: Callable[[Any], None] | None = None,
) -> Any:
    """Patch a client instance, a client class or the module (every client of the provider);
    `extra` patches what is not a plain method of a resource."""
    try:
        if isinstance(target, type) or hasattr(target, "__path__"):
            for r in resources:
                module = importlib.import_module(r.module)
                for name in r.methods:
                    patch_method(getattr(module, r.sync_class), name, r.adapter, is_async=False)
                    patch_method(getattr(module, r.async_class), name, r.adapter, is_async=True)
        else:
            for r in resources:
                owner = functools.reduce(getattr, r.path.split("."), target)
                is_async = type(owner).__name__.startswith("Async")
                for name in r.methods:
                    patch_method(owner, name, r.adapter, is_async)
            hook_attempts(target)
            _trace_copies(target, resources, provider, extra)
        if extra is not None:
            extra(target)
    except Exception as exc:
        report_failure(f"instrument_{provider}", exc)
    return target


def _trace_copies(
    client: Any,
    resources: Sequence[Resource],
    provider: str,
    extra: Callable[[Any], None] | None,
) -> None:
    """Make `client.with_options(...)` / `client.copy(...)` return traced clients too."""
    for name in ("copy", "with_options"):
        method = getattr(client, name, None)
        if method is None or getattr(method, WRAPPED, False):
            continue

        def traced_copy(*args: Any, _m: Any = method, **kwargs: Any) -> Any:
            return instrument_resources(_m(*args, **kwargs), resources, provider, extra)

        setattr(traced_copy, WRAPPED, True)
        setattr(client, name, traced_copy)
