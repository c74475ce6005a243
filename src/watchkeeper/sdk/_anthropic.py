"""`instrument_anthropic()`: spans for Anthropic Messages API calls (plain and streamed).

Anthropic reports `input_tokens` without the prompt-cache reads and writes; GenAI semconv (and
our pricing) count every input token, so the span's input is the sum of the three.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from watchkeeper.model import conventions as c
from watchkeeper.sdk._instrument import Resource, instrument_resources
from watchkeeper.sdk._llm import (
    WRAPPED,
    StreamState,
    StreamTracker,
    active_call,
    as_int,
    begin_call,
    get_field,
    messages_to_semconv,
    record_response_basics,
    record_usage,
    request_params,
    tool_part,
    trace_async_stream,
    trace_sync_stream,
)
from watchkeeper.sdk._safe import report_failure
from watchkeeper.sdk._span import ObservedSpan

T = TypeVar("T")


def anthropic_usage(usage: Any) -> dict[str, int | None]:
    """Anthropic usage, provider-neutral: input includes cache reads and writes."""
    if usage is None:
        return {}
    raw_in = as_int(get_field(usage, "input_tokens"))
    read = as_int(get_field(usage, "cache_read_input_tokens"))
    write = as_int(get_field(usage, "cache_creation_input_tokens"))
    total_in = None if raw_in is None else raw_in + (read or 0) + (write or 0)
    return {
        "input": total_in,
        "output": as_int(get_field(usage, "output_tokens")),
        "cache_read": read,
        "cache_write": write,
    }


def _system_text(system: Any) -> Any:
    if isinstance(system, list):
        return [{"type": "text", "content": get_field(b, "text")} for b in system]
    return system


class Messages:
    """`messages.create`."""

    provider, kind = "anthropic", "llm"

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return request_params(kwargs, "max_tokens")

    def input(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            c.GEN_AI_INPUT_MESSAGES: messages_to_semconv(kwargs.get("messages")),
            c.GEN_AI_SYSTEM_INSTRUCTIONS: _system_text(kwargs.get("system")),
        }

    def response(self, obs: ObservedSpan, result: Any) -> list[dict[str, Any]] | None:
        stop = get_field(result, "stop_reason")
        finish = [str(stop)] if stop else []
        record_response_basics(
            obs, self.provider, get_field(result, "id"), get_field(result, "model"), finish
        )
        record_usage(obs, anthropic_usage(get_field(result, "usage")))
        parts: list[dict[str, Any]] = []
        for block in get_field(result, "content") or []:
            kind = get_field(block, "type")
            if kind == "text":
                parts.append({"type": "text", "content": get_field(block, "text")})
            elif kind == "tool_use":
                parts.append(
                    tool_part(
                        get_field(block, "id"), get_field(block, "name"), get_field(block, "input")
                    )
                )
        return [{"role": "assistant", "parts": parts, "finish_reason": stop}]

    def chunk(self, state: StreamState, event: Any) -> None:
        kind = get_field(event, "type")
        if kind == "message_start":
            message = get_field(event, "message")
            state.response_id = get_field(message, "id")
            state.response_model = get_field(message, "model")
            state.usage = anthropic_usage(get_field(message, "usage"))
        elif kind == "content_block_delta":
            text = get_field(get_field(event, "delta"), "text")
            if isinstance(text, str):
                state.text.append(text)
        elif kind == "message_delta":
            stop = get_field(get_field(event, "delta"), "stop_reason")
            if stop:
                state.finish_reasons = [str(stop)]
            self._delta_usage(state, get_field(event, "usage"))

    @staticmethod
    def _delta_usage(state: StreamState, usage: Any) -> None:
        # message_delta carries the final output count (and, lately, input counts too).
        output = as_int(get_field(usage, "output_tokens"))
        if output is not None:
            state.usage["output"] = output
        if as_int(get_field(usage, "input_tokens")) is not None:
            merged = anthropic_usage(usage)
            state.usage.update({k: v for k, v in merged.items() if k != "output" and v is not None})


MESSAGES = Messages()


class TracedStreamManager:
    """Stands in for `messages.stream(...)`'s manager: the span starts when the request is made
    (on enter) and ends with the stream: consumed, or closed when the block exits."""

    def __init__(self, manager: Any, kwargs: Mapping[str, Any]) -> None:
        self._manager = manager
        self._kwargs = {**kwargs, "stream": True}
        self._tracker: StreamTracker | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def _begin(self) -> tuple[ObservedSpan | None, float]:
        return begin_call(MESSAGES, self._kwargs), time.perf_counter()

    def _started(self, obs: ObservedSpan, t0: float, stream: Any) -> Any:
        self._tracker = StreamTracker(obs, MESSAGES, t0)
        raw = getattr(stream, "_raw_stream", None)
        if raw is None:  # not the helper we know: still end the span on exit
            return stream
        is_async = type(raw).__name__.startswith("Async")
        (trace_async_stream if is_async else trace_sync_stream)(raw, self._tracker)
        return stream

    def _finish(self) -> None:
        if self._tracker is not None:
            self._tracker.done(closed=True)

    def __enter__(self) -> Any:
        obs, t0 = self._begin()
        if obs is None:
            return self._manager.__enter__()
        with active_call(obs):
            stream = self._manager.__enter__()
        return self._started(obs, t0, stream)

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self._manager.__exit__(t, e, tb)
        finally:
            self._finish()

    async def __aenter__(self) -> Any:
        obs, t0 = self._begin()
        if obs is None:
            return await self._manager.__aenter__()
        with active_call(obs):
            stream = await self._manager.__aenter__()
        return self._started(obs, t0, stream)

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self._manager.__aexit__(t, e, tb)
        finally:
            self._finish()


def _wrap_stream_helper(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = fn(*args, **kwargs)
        try:
            return TracedStreamManager(manager, kwargs)
        except Exception as exc:
            report_failure("anthropic.stream", exc)
            return manager

    setattr(stream, WRAPPED, True)
    return stream


def _patch_stream_helpers(target: Any) -> None:
    """Trace `messages.stream(...)` (it posts directly, not through `create`)."""
    if isinstance(target, type) or hasattr(target, "__path__"):
        module = importlib.import_module("anthropic.resources.messages")
        owners: list[Any] = [module.Messages, module.AsyncMessages]
    else:
        owners = [target.messages]
    for owner in owners:
        original = getattr(owner, "stream", None)
        if original is not None and not getattr(original, WRAPPED, False):
            owner.stream = _wrap_stream_helper(original)


ANTHROPIC_RESOURCES = (
    Resource("messages", "anthropic.resources.messages", "Messages", "AsyncMessages", MESSAGES),
)


def instrument_anthropic(client: T) -> T:
    """Trace an Anthropic client (sync or async), a client class, or the module; returns it."""
    instrument_resources(client, ANTHROPIC_RESOURCES, "anthropic", _patch_stream_helpers)
    return client
