"""`observe()`: trace a function (sync, async, generator, async generator) or a block.

Before `init()` it only calls the function (or yields a no-op handle). A failure inside the SDK
is reported once and the app's code runs anyway; the app's own exceptions pass through unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar, cast

from watchkeeper.errors import ConfigError
from watchkeeper.sdk import _runtime
from watchkeeper.sdk._context import AsyncWith
from watchkeeper.sdk._safe import report_failure
from watchkeeper.sdk._span import (
    INTERNAL_KINDS,
    KINDS,
    NOOP,
    ObservedSpan,
    default_span_kind,
    detach_quietly,
    open_span,
    span_attributes,
)

F = TypeVar("F", bound=Callable[..., Any])

# `with observe("name")` builds a new observe object per use: their start attributes are shared
# per (name, kind) so the block form costs what the decorator costs. Bounded: names are code.
_SHARED_BASE: dict[tuple[str, str], dict[str, Any]] = {}
_SHARED_BASE_MAX = 4096
# Spans opened by `with observe(...)` in this task/thread, so one observe object can be shared
# by concurrent tasks and each `with` still ends its own span.
_OPEN: ContextVar[tuple[tuple[int, ObservedSpan], ...]] = ContextVar(
    "watchkeeper_open_spans", default=()
)


# Lower case: used like a function, `@observe()` / `with observe("x")`.
class observe(AsyncWith[ObservedSpan]):
    """Decorator and context manager that records a span of the given kind."""

    __slots__ = (
        "_active",
        "_attributes",
        "_base",
        "_capture_in",
        "_capture_out",
        "_kind",
        "_name",
        "_sig",
        "_span_kind",
    )

    def __init__(
        self,
        name: str | None = None,
        *,
        kind: str = "workflow",
        attributes: Mapping[str, Any] | None = None,
        capture_input: bool | None = None,
        capture_output: bool | None = None,
    ) -> None:
        if kind not in KINDS and kind not in INTERNAL_KINDS:
            report_failure("observe.kind", ConfigError(f"kind={kind!r}: use one of {KINDS}"))
            kind = "workflow"
        self._name = name
        self._kind = kind
        self._attributes = dict(attributes) if attributes else None
        self._capture_in = capture_input
        self._capture_out = capture_output
        self._active: list[ObservedSpan] = []
        self._sig: inspect.Signature | None = None
        self._base: dict[str, Any] | None = None  # the decorator's attributes, built once
        self._span_kind = default_span_kind(kind)

    # --- context manager ------------------------------------------------------------------------
    def _start(self, name: str, activate: bool = True) -> ObservedSpan:
        rt = _runtime._current
        if rt is None:
            return NOOP
        try:
            base = self._base
            if base is None or name != self._name:
                base = self._attributes_for(name)
            return open_span(
                rt,
                name,
                self._kind,
                base,
                self._span_kind,
                self._capture_in,
                self._capture_out,
                activate,
            )
        except Exception as exc:
            report_failure("observe.start", exc)
            return NOOP

    def _attributes_for(self, name: str) -> dict[str, Any]:
        """Start attributes for `name`; shared between observe() calls with the same name/kind."""
        if self._attributes is not None:
            base = span_attributes(name, self._kind, self._attributes)
        else:
            key = (name, self._kind)
            base = _SHARED_BASE.get(key) or span_attributes(name, self._kind)
            if len(_SHARED_BASE) < _SHARED_BASE_MAX:
                _SHARED_BASE[key] = base
        if name == self._name:
            self._base = base
        return base

    def __enter__(self) -> ObservedSpan:
        obs = self._start(self._name or self._kind)
        self._active.append(obs)
        _OPEN.set((*_OPEN.get(), (id(self), obs)))
        return obs

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pop().end(exc)

    def _pop(self) -> ObservedSpan:
        """The span this object opened last in this task/thread (objects may be shared)."""
        stack = _OPEN.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == id(self):
                obs = stack[i][1]
                _OPEN.set(stack[:i] + stack[i + 1 :])
                self._active.remove(obs)
                return obs
        # Exited in another context than it was entered (e.g. across a generator's yield).
        return self._active.pop()

    # --- decorator ------------------------------------------------------------------------------
    def __call__(self, fn: F) -> F:
        """Wrap `fn` so each call is recorded as a span."""
        if self._name is None:
            self._name = getattr(fn, "__qualname__", None) or repr(fn)
        if inspect.isasyncgenfunction(fn):
            return cast(F, self._wrap_async_gen(fn))
        if inspect.isgeneratorfunction(fn):
            return cast(F, self._wrap_gen(fn))
        if inspect.iscoroutinefunction(fn):
            return cast(F, self._wrap_async(fn))
        return cast(F, self._wrap_sync(fn))

    def _begin(
        self, fn: Callable[..., Any], args: Any, kwargs: Any, activate: bool = True
    ) -> ObservedSpan:
        obs = self._start(cast(str, self._name), activate)
        if obs._capture_in:
            obs.set_input(self._arguments(fn, args, kwargs))
        return obs

    def _arguments(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        """The call's arguments by parameter name (without self/cls), for content capture."""
        try:
            if self._sig is None:
                self._sig = inspect.signature(fn)
            bound = self._sig.bind_partial(*args, **kwargs).arguments
            return {k: v for k, v in bound.items() if k not in ("self", "cls")}
        except (TypeError, ValueError):
            return {"args": list(args), "kwargs": kwargs}

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _runtime._current is None:
                return fn(*args, **kwargs)
            obs = self._begin(fn, args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                obs.end(exc)
                raise
            if obs._capture_out:
                obs.set_output(result)
            obs.end()
            return result

        return wrapper

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _runtime._current is None:
                return await fn(*args, **kwargs)
            obs = self._begin(fn, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                obs.end(exc)
                raise
            if obs._capture_out:
                obs.set_output(result)
            obs.end()
            return result

        return wrapper

    def _wrap_gen(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _runtime._current is None:
                return (yield from fn(*args, **kwargs))
            obs = self._begin(fn, args, kwargs, activate=False)
            return (yield from _drive_gen(fn(*args, **kwargs), obs))

        return wrapper

    def _wrap_async_gen(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            # An async generator cannot `yield from`, so the forwarding loop lives here.
            obs = NOOP if _runtime._current is None else self._begin(fn, args, kwargs, False)
            agen = fn(*args, **kwargs)
            sent: Any = None
            thrown: BaseException | None = None
            items: list[Any] = []
            while True:
                token = obs.attach() if obs is not NOOP else None
                try:
                    step = agen.athrow(thrown) if thrown is not None else agen.asend(sent)
                    item = await step
                except StopAsyncIteration:
                    _end_gen(obs, None, items)
                    return
                except BaseException as exc:
                    obs.end(exc)
                    raise
                finally:
                    if token is not None:
                        detach_quietly(token)
                if obs._capture_out and len(items) < 1000:
                    items.append(item)
                thrown = None
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    _end_gen(obs, None, items)
                    raise
                except BaseException as exc:
                    thrown = exc

        return wrapper


def _drive_gen(gen: Generator[Any, Any, Any], obs: ObservedSpan) -> Generator[Any, Any, Any]:
    """Run `gen` with `obs` current only while `gen` runs (never while the caller does)."""
    sent: Any = None
    thrown: BaseException | None = None
    items: list[Any] = []
    while True:
        token = obs.attach()
        try:
            item = gen.throw(thrown) if thrown is not None else gen.send(sent)
        except StopIteration as stop:
            _end_gen(obs, stop.value, items)
            return stop.value
        except BaseException as exc:
            obs.end(exc)
            raise
        finally:
            detach_quietly(token)
        if obs._capture_out and len(items) < 1000:
            items.append(item)
        thrown = None
        try:
            sent = yield item
        except GeneratorExit:
            gen.close()
            _end_gen(obs, None, items)
            raise
        except BaseException as exc:
            thrown = exc


def _end_gen(obs: ObservedSpan, value: Any, items: list[Any]) -> None:
    if obs._capture_out:
        obs.set_output(items if value is None else {"items": items, "return": value})
    obs.end()
