"""The LLM-call tracing the provider wrappers (`_openai`, `_anthropic`) share.

A wrapped `create` starts one span of kind llm/embedding per call (retries inside the client are
attempts of that call: `http.request.resend_count` and one event each), passes the client's return
value and exceptions through unchanged, and for a stream ends the span when the stream is consumed
or closed, with the time to the first chunk. Responses are read defensively: a field the client
does not have is skipped, never an error. What is provider-specific is an `Adapter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from watchkeeper.model import conventions as c
from watchkeeper.sdk import _runtime
from watchkeeper.sdk._safe import report_failure
from watchkeeper.sdk._span import ObservedSpan, start_span, to_text

WRAPPED = "__watchkeeper_wrapped__"
#: The LLM span of the call in progress (hooks add attempts to it; nested wrappers pass through).
_CALL: ContextVar[ObservedSpan | None] = ContextVar("watchkeeper_llm_call", default=None)


@dataclass
class StreamState:
    """What a provider adapter accumulates from the chunks of one streamed response."""

    text: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    response_id: str | None = None
    response_model: str | None = None
    usage: dict[str, int | None] = field(default_factory=dict)


class Adapter(Protocol):
    """How one provider endpoint's requests and responses map to span attributes."""

    provider: str
    kind: str  # "llm" | "embedding"

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Span attributes of the request (model, parameters)."""

    def input(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Captured content of the request: attribute name → value."""

    def response(self, obs: ObservedSpan, result: Any) -> list[dict[str, Any]] | None:
        """Record a complete response; returns the output messages (for capture)."""

    def chunk(self, state: StreamState, chunk: Any) -> None:
        """Fold one stream chunk/event into `state`."""


# --- recording ------------------------------------------------------------------------------


def set_content(obs: ObservedSpan, attributes: Mapping[str, Any]) -> None:
    """Set captured content attributes, only when capture is on, redacted like `set_input`."""
    rt = _runtime.current()
    if rt is None or not rt.settings.capture_content or not obs.otel_span.is_recording():
        return  # off, or a span sampled out: no serialising and redacting for nothing
    redactor = rt.redactor
    for key, value in attributes.items():
        if value is not None:
            text = to_text(value)
            obs.set({key: redactor(text) if redactor is not None else text})


def record_usage(obs: ObservedSpan, usage: Mapping[str, int | None]) -> None:
    """Set token counts from provider-neutral names (input includes cached tokens)."""
    obs.set_usage(
        input_tokens=usage.get("input"),
        output_tokens=usage.get("output"),
        cache_read_tokens=usage.get("cache_read"),
        cache_write_tokens=usage.get("cache_write"),
        reasoning_tokens=usage.get("reasoning"),
    )


def record_response_basics(
    obs: ObservedSpan, provider: str, rid: Any, model: Any, finish: list[str]
) -> None:
    """Response id, response model and finish reasons."""
    if isinstance(model, str):
        obs.set_model(response=model, provider=provider)
    obs.set({c.GEN_AI_RESPONSE_ID: rid if isinstance(rid, str) else None})
    if finish:
        obs.set({c.GEN_AI_RESPONSE_FINISH_REASONS: finish})


def _finish_stream(obs: ObservedSpan, adapter: Adapter, state: StreamState) -> None:
    record_response_basics(
        obs, adapter.provider, state.response_id, state.response_model, state.finish_reasons
    )
    record_usage(obs, state.usage)
    message = {"role": "assistant", "parts": [{"type": "text", "content": "".join(state.text)}]}
    if state.finish_reasons:
        message["finish_reason"] = state.finish_reasons[0]
    set_content(obs, {c.GEN_AI_OUTPUT_MESSAGES: [message]})


def end_with_error(obs: ObservedSpan, exc: BaseException) -> None:
    """End the span of a failed call: HTTP status if any; a cancelled call is a timeout."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        obs.set({c.HTTP_RESPONSE_STATUS_CODE: status})
    if isinstance(exc, asyncio.CancelledError):
        # The caller gave up (almost always a deadline, e.g. a guard's): the provider was too
        # slow for it, which is a timeout rather than a provider error.
        obs.add_event("cancelled")
        obs.set_outcome("timeout", "cancelled")
        obs.end()
        return
    obs.end(exc)


def begin_call(adapter: Adapter, kwargs: Mapping[str, Any]) -> ObservedSpan | None:
    """Start the call's span, or None when the SDK is off or this call is already traced."""
    rt = _runtime.current()
    if rt is None or _CALL.get() is not None:
        return None
    try:
        attrs = adapter.request(kwargs)
        model = attrs.get(c.GEN_AI_REQUEST_MODEL)
        op = "embeddings" if adapter.kind == "embedding" else "chat"
        name = f"{op} {model}" if model else op
        obs = start_span(rt, name, adapter.kind, attrs, activate=False)
        obs.set_model(request=model if isinstance(model, str) else None, provider=adapter.provider)
        if kwargs.get("stream"):
            obs.set({c.WK_LLM_STREAMING: True})
        set_content(obs, adapter.input(kwargs))
        return obs
    except Exception as exc:
        report_failure(f"{adapter.provider}.request", exc)
        return None


def _complete(obs: ObservedSpan, adapter: Adapter, result: Any) -> None:
    try:
        output = adapter.response(obs, result)
        if output:
            set_content(obs, {c.GEN_AI_OUTPUT_MESSAGES: output})
    except Exception as exc:
        report_failure(f"{adapter.provider}.response", exc)
    obs.end()


def _safe_chunk(adapter: Adapter, state: StreamState, chunk: Any) -> None:
    try:
        adapter.chunk(state, chunk)
    except Exception as exc:
        report_failure(f"{adapter.provider}.chunk", exc)


class StreamTracker:
    """Ends a stream's span once: when it is exhausted, fails, or is closed early."""

    def __init__(self, obs: ObservedSpan, adapter: Adapter, t0: float) -> None:
        self.obs, self.adapter, self.t0 = obs, adapter, t0
        self.state = StreamState()
        self.first = True
        self.ended = False

    def item(self, chunk: Any) -> None:
        """One chunk arrived (the first one sets the time to first chunk)."""
        if self.first:
            self.first = False
            ttfc = time.perf_counter() - self.t0
            self.obs.set({c.WK_LLM_TIME_TO_FIRST_CHUNK_S: round(ttfc, 6)})
            self.obs.add_event("gen_ai.first_chunk", time_to_first_chunk_s=round(ttfc, 6))
        _safe_chunk(self.adapter, self.state, chunk)

    def done(self, error: BaseException | None = None, closed: bool = False) -> None:
        """The stream ended, failed with `error`, or was `closed` early: end the span once."""
        if self.ended:
            return
        self.ended = True
        if closed:
            self.obs.add_event("gen_ai.stream.closed", chunks_read=not self.first)
        try:
            _finish_stream(self.obs, self.adapter, self.state)
        except Exception as exc:
            report_failure(f"{self.adapter.provider}.stream", exc)
        if error is not None:
            end_with_error(self.obs, error)
        self.obs.end()

    def __enter__(self) -> StreamTracker:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Wraps the loop over the client's chunks, in a sync or an async generator alike.
        if isinstance(e, GeneratorExit):
            self.done(closed=True)
        else:
            self.done(e)


def trace_sync_stream(stream: Any, tracker: StreamTracker) -> Any:
    """Trace a client Stream in place (same object and type): its iterator and `close`."""
    inner: Iterator[Any] = stream._iterator

    def traced() -> Iterator[Any]:
        with tracker:
            for chunk in inner:
                tracker.item(chunk)
                yield chunk

    original_close = stream.close

    def close() -> None:
        try:
            original_close()
        finally:
            tracker.done(closed=True)

    stream._iterator = traced()
    stream.close = close
    return stream


def trace_async_stream(stream: Any, tracker: StreamTracker) -> Any:
    """Trace a client AsyncStream in place: its async iterator and `close`."""
    inner: AsyncIterator[Any] = stream._iterator

    async def traced() -> AsyncIterator[Any]:
        with tracker:
            async for chunk in inner:
                tracker.item(chunk)
                yield chunk

    original_close = stream.close

    async def close() -> None:
        try:
            await original_close()
        finally:
            tracker.done(closed=True)

    stream._iterator = traced()
    stream.close = close
    return stream


def _is_stream(result: Any) -> bool:
    return hasattr(result, "_iterator") and hasattr(result, "response")


def _returned(
    obs: ObservedSpan,
    adapter: Adapter,
    kwargs: Mapping[str, Any],
    t0: float,
    result: Any,
    trace_stream: Callable[[Any, StreamTracker], Any],
) -> Any:
    """The call returned `result`: end the span now, or trace the stream it is (in place)."""
    if kwargs.get("stream") and _is_stream(result):
        return trace_stream(result, StreamTracker(obs, adapter, t0))
    _complete(obs, adapter, result)
    return result


def wrap_sync(fn: Callable[..., Any], adapter: Adapter) -> Callable[..., Any]:
    """Trace a sync `create`; the result and any exception pass through unchanged."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        obs = begin_call(adapter, kwargs)
        if obs is None:
            return fn(*args, **kwargs)
        t0 = time.perf_counter()
        with active_call(obs):
            result = fn(*args, **kwargs)
        return _returned(obs, adapter, kwargs, t0, result, trace_sync_stream)

    setattr(wrapper, WRAPPED, True)
    return wrapper


def wrap_async(fn: Callable[..., Any], adapter: Adapter) -> Callable[..., Any]:
    """Trace an async `create`; the result and any exception pass through unchanged."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        obs = begin_call(adapter, kwargs)
        if obs is None:
            return await fn(*args, **kwargs)
        t0 = time.perf_counter()
        with active_call(obs):
            result = await fn(*args, **kwargs)
        return _returned(obs, adapter, kwargs, t0, result, trace_async_stream)

    setattr(wrapper, WRAPPED, True)
    return wrapper


@contextlib.contextmanager
def active_call(obs: ObservedSpan) -> Iterator[None]:
    """Make `obs` the current span (and the call attempts are added to) while the client call
    runs; an exception out of it ends `obs` as failed (and goes on up)."""
    token, call = obs.attach(), _CALL.set(obs)
    try:
        try:
            yield
        finally:
            _CALL.reset(call)
            _detach(token)
    except BaseException as exc:
        end_with_error(obs, exc)
        raise


def _detach(token: object) -> None:
    from opentelemetry import context as otel_context

    with contextlib.suppress(Exception):  # attached in another context: nothing to undo
        otel_context.detach(token)  # type: ignore[arg-type]


# --- attempts (retries inside one call) -------------------------------------------------------


def _attempt(response: Any) -> None:
    obs = _CALL.get()
    if obs is None:
        return
    try:
        resend = int(response.request.headers.get("x-stainless-retry-count", "0"))
        status = int(response.status_code)
        obs.add_event("http.attempt", **{c.HTTP_RESPONSE_STATUS_CODE: status,
                                         c.HTTP_REQUEST_RESEND_COUNT: resend})  # fmt: skip
        if resend:
            obs.set({c.HTTP_REQUEST_RESEND_COUNT: resend})
    except Exception as exc:
        report_failure("llm.attempt", exc)


async def _attempt_async(response: Any) -> None:
    _attempt(response)


def hook_attempts(client: Any) -> None:
    """Add a response hook to the client's HTTP client so each attempt shows on the call span."""
    http = getattr(client, "_client", None)
    hooks = getattr(http, "event_hooks", None)
    if http is None or not isinstance(hooks, dict):
        return
    is_async = type(http).__name__.startswith("Async")
    hook = _attempt_async if is_async else _attempt
    responses = list(hooks.get("response", []))
    if hook not in responses:
        http.event_hooks = {**hooks, "response": [*responses, hook]}


# --- reading provider payloads -------------------------------------------------------------


def get_field(obj: Any, name: str) -> Any:
    """A field of a client model or a dict (None when absent)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def as_int(value: Any) -> int | None:
    """`value` if it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def messages_to_semconv(messages: Any) -> list[dict[str, Any]]:
    """Chat messages as GenAI semconv input messages: role and text/other parts."""
    out: list[dict[str, Any]] = []
    for m in messages if isinstance(messages, list | tuple) else []:
        role, content = get_field(m, "role"), get_field(m, "content")
        if isinstance(content, str):
            parts: list[dict[str, Any]] = [{"type": "text", "content": content}]
        else:
            parts = [_part(p) for p in content or []] if isinstance(content, list) else []
        out.append({"role": role, "parts": parts})
    return out


def tool_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """A GenAI semconv tool-call message part."""
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def _part(block: Any) -> dict[str, Any]:
    kind = get_field(block, "type") or "unknown"
    text = get_field(block, "text")
    if isinstance(text, str):
        return {"type": "text", "content": text}
    return {"type": str(kind)}


def request_params(kwargs: Mapping[str, Any], *max_names: str) -> dict[str, Any]:
    """Model, temperature, top_p and the first max-tokens parameter given, as attributes."""
    max_tokens = next((kwargs[n] for n in max_names if as_int(kwargs.get(n)) is not None), None)
    return {
        c.GEN_AI_REQUEST_MODEL: kwargs.get("model"),
        c.GEN_AI_REQUEST_TEMPERATURE: _number(kwargs.get("temperature")),
        c.GEN_AI_REQUEST_TOP_P: _number(kwargs.get("top_p")),
        c.GEN_AI_REQUEST_MAX_TOKENS: max_tokens,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
