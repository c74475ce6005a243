"""`instrument_openai()`: spans for OpenAI client calls; the LLM-call tracing both wrappers share.

A wrapped `create` starts one span of kind llm/embedding per call (retries inside the client are
attempts of that call: `http.request.resend_count` and one event each), passes the client's return
value and exceptions through unchanged, and for a stream ends the span when the stream is consumed
or closed, with the time to the first chunk. Responses are read defensively: a field the client
does not have is skipped, never an error. The Anthropic wrapper reuses the machinery here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from watchkeeper.model import conventions as c
from watchkeeper.sdk import _runtime
from watchkeeper.sdk._safe import report_failure
from watchkeeper.sdk._span import ObservedSpan, start_span, to_text

T = TypeVar("T")
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


def trace_sync_stream(stream: Any, tracker: StreamTracker) -> Any:
    """Trace a client Stream in place (same object and type): its iterator and `close`."""
    inner: Iterator[Any] = stream._iterator

    def traced() -> Iterator[Any]:
        try:
            for chunk in inner:
                tracker.item(chunk)
                yield chunk
        except GeneratorExit:
            tracker.done(closed=True)
            raise
        except BaseException as exc:
            tracker.done(exc)
            raise
        tracker.done()

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
        try:
            async for chunk in inner:
                tracker.item(chunk)
                yield chunk
        except GeneratorExit:
            tracker.done(closed=True)
            raise
        except BaseException as exc:
            tracker.done(exc)
            raise
        tracker.done()

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


def wrap_sync(fn: Callable[..., Any], adapter: Adapter) -> Callable[..., Any]:
    """Trace a sync `create`; the result and any exception pass through unchanged."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        obs = begin_call(adapter, kwargs)
        if obs is None:
            return fn(*args, **kwargs)
        t0 = time.perf_counter()
        try:
            with active_call(obs):
                result = fn(*args, **kwargs)
        except BaseException as exc:
            end_with_error(obs, exc)
            raise
        if kwargs.get("stream") and _is_stream(result):
            return trace_sync_stream(result, StreamTracker(obs, adapter, t0))
        _complete(obs, adapter, result)
        return result

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
        try:
            with active_call(obs):
                result = await fn(*args, **kwargs)
        except BaseException as exc:
            end_with_error(obs, exc)
            raise
        if kwargs.get("stream") and _is_stream(result):
            return trace_async_stream(result, StreamTracker(obs, adapter, t0))
        _complete(obs, adapter, result)
        return result

    setattr(wrapper, WRAPPED, True)
    return wrapper


@contextlib.contextmanager
def active_call(obs: ObservedSpan) -> Iterator[None]:
    """Make `obs` the current span (and the call attempts are added to) while it runs."""
    token, call = obs.attach(), _CALL.set(obs)
    try:
        yield
    finally:
        _CALL.reset(call)
        _detach(token)


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


# --- patching -------------------------------------------------------------------------------


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


# --- OpenAI ---------------------------------------------------------------------------------


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


def _openai_usage(usage: Any) -> dict[str, int | None]:
    """Chat (prompt/completion) or Responses (input/output) usage, provider-neutral."""
    if usage is None:
        return {}
    prompt = as_int(get_field(usage, "prompt_tokens"))
    if prompt is not None or as_int(get_field(usage, "completion_tokens")) is not None:
        details_in, details_out = "prompt_tokens_details", "completion_tokens_details"
        tokens_in, tokens_out = prompt, as_int(get_field(usage, "completion_tokens"))
    else:
        details_in, details_out = "input_tokens_details", "output_tokens_details"
        tokens_in, tokens_out = (
            as_int(get_field(usage, "input_tokens")),
            as_int(get_field(usage, "output_tokens")),
        )
    return {
        "input": tokens_in,
        "output": tokens_out,
        "cache_read": as_int(get_field(get_field(usage, details_in), "cached_tokens")),
        "reasoning": as_int(get_field(get_field(usage, details_out), "reasoning_tokens")),
    }


class ChatCompletions:
    """`chat.completions.create`."""

    provider, kind = "openai", "llm"

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return request_params(kwargs, "max_completion_tokens", "max_tokens")

    def input(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {c.GEN_AI_INPUT_MESSAGES: messages_to_semconv(kwargs.get("messages"))}

    def response(self, obs: ObservedSpan, result: Any) -> list[dict[str, Any]] | None:
        choices = get_field(result, "choices") or []
        finish = [str(f) for f in (get_field(ch, "finish_reason") for ch in choices) if f]
        record_response_basics(
            obs, self.provider, get_field(result, "id"), get_field(result, "model"), finish
        )
        record_usage(obs, _openai_usage(get_field(result, "usage")))
        output = []
        for ch in choices:
            content = get_field(get_field(ch, "message"), "content")
            parts = [{"type": "text", "content": content}] if isinstance(content, str) else []
            for call in get_field(get_field(ch, "message"), "tool_calls") or []:
                fn = get_field(call, "function")
                parts.append(
                    tool_part(
                        get_field(call, "id"), get_field(fn, "name"), get_field(fn, "arguments")
                    )
                )
            finish_reason = get_field(ch, "finish_reason")
            output.append({"role": "assistant", "parts": parts, "finish_reason": finish_reason})
        return output

    def chunk(self, state: StreamState, chunk: Any) -> None:
        state.response_id = state.response_id or get_field(chunk, "id")
        state.response_model = state.response_model or get_field(chunk, "model")
        for ch in get_field(chunk, "choices") or []:
            text = get_field(get_field(ch, "delta"), "content")
            if isinstance(text, str):
                state.text.append(text)
            if get_field(ch, "finish_reason"):
                state.finish_reasons.append(str(get_field(ch, "finish_reason")))
        if get_field(chunk, "usage") is not None:
            state.usage = _openai_usage(get_field(chunk, "usage"))


class Responses:
    """`responses.create` (the Responses API)."""

    provider, kind = "openai", "llm"

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return request_params(kwargs, "max_output_tokens")

    def input(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        value = kwargs.get("input")
        messages = [{"role": "user", "content": value}] if isinstance(value, str) else value
        return {
            c.GEN_AI_INPUT_MESSAGES: messages_to_semconv(messages),
            c.GEN_AI_SYSTEM_INSTRUCTIONS: kwargs.get("instructions"),
        }

    def response(self, obs: ObservedSpan, result: Any) -> list[dict[str, Any]] | None:
        status = get_field(result, "status")
        finish = [str(status)] if status else []
        record_response_basics(
            obs, self.provider, get_field(result, "id"), get_field(result, "model"), finish
        )
        record_usage(obs, _openai_usage(get_field(result, "usage")))
        text = getattr(result, "output_text", None)
        if not isinstance(text, str):
            return None
        return [{"role": "assistant", "parts": [{"type": "text", "content": text}],
                 "finish_reason": status}]  # fmt: skip

    def chunk(self, state: StreamState, event: Any) -> None:
        kind = get_field(event, "type")
        if kind == "response.output_text.delta" and isinstance(get_field(event, "delta"), str):
            state.text.append(get_field(event, "delta"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = get_field(event, "response")
            state.response_id = get_field(response, "id")
            state.response_model = get_field(response, "model")
            if get_field(response, "status"):
                state.finish_reasons = [str(get_field(response, "status"))]
            state.usage = _openai_usage(get_field(response, "usage"))


class Embeddings:
    """`embeddings.create`."""

    provider, kind = "openai", "embedding"

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            c.GEN_AI_REQUEST_MODEL: kwargs.get("model"),
            c.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: as_int(kwargs.get("dimensions")),
        }

    def input(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {c.WK_INPUT: kwargs.get("input")}

    def response(self, obs: ObservedSpan, result: Any) -> list[dict[str, Any]] | None:
        record_response_basics(obs, self.provider, None, get_field(result, "model"), [])
        usage = get_field(result, "usage")
        obs.set_usage(input_tokens=as_int(get_field(usage, "prompt_tokens")))
        data = get_field(result, "data") or []
        vector = get_field(data[0], "embedding") if data else None
        if isinstance(vector, list):
            obs.set({c.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(vector)})
        return None

    def chunk(self, state: StreamState, chunk: Any) -> None:
        return None  # embeddings do not stream


_CHAT = "openai.resources.chat.completions"
OPENAI_RESOURCES = (
    # `parse` (structured output) posts directly; `stream()` helpers go through `create`.
    Resource("chat.completions", _CHAT, "Completions", "AsyncCompletions", ChatCompletions(),
             ("create", "parse")),
    Resource("responses", "openai.resources.responses", "Responses", "AsyncResponses",
             Responses(), ("create", "parse")),
    Resource("embeddings", "openai.resources.embeddings", "Embeddings", "AsyncEmbeddings",
             Embeddings()),
)  # fmt: skip


def instrument_openai(client: T) -> T:
    """Trace an OpenAI client (sync or async), a client class or the `openai` module; returns it."""
    instrument_resources(client, OPENAI_RESOURCES, "openai")
    return client
