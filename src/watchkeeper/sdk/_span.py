"""`ObservedSpan`: the handle `observe()` gives the app, and how spans start and end.

Attribute names come from `watchkeeper.model.conventions` (GenAI semconv v1.41 plus ours).
Every method is safe to call on the no-op handle used before `init()`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from watchkeeper.errors import CircuitOpen, GuardTimeout
from watchkeeper.model import OUTCOMES
from watchkeeper.model import conventions as c
from watchkeeper.sdk._context import ATTRS, REQUEST, RequestState
from watchkeeper.sdk._runtime import Runtime
from watchkeeper.sdk._safe import report_failure

#: Kinds an app may pass to `observe`; "guard" and "http" are used by the SDK itself.
KINDS: tuple[str, ...] = ("llm", "embedding", "retrieval", "tool", "agent", "workflow")
INTERNAL_KINDS: tuple[str, ...] = ("guard", "http")
#: `gen_ai.operation.name` for each kind (GenAI semconv v1.41).
GEN_AI_OPERATION: dict[str, str] = {
    "llm": "chat",
    "embedding": "embeddings",
    "retrieval": "retrieval",
    "tool": "execute_tool",
    "agent": "invoke_agent",
    "workflow": "invoke_workflow",
}
_CLIENT_KINDS = frozenset(("llm", "embedding"))
MAX_CONTENT_CHARS = 32_000  # captured input/output beyond this is cut (and says so)


def _json_default(value: Any) -> Any:
    for attr in ("model_dump", "to_dict", "_asdict"):
        method = getattr(value, attr, None)
        if callable(method):
            try:
                return method()
            except Exception:  # an odd object must not break serialisation
                break
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def to_text(value: Any, limit: int = MAX_CONTENT_CHARS) -> str:
    """Serialise captured content: strings as they are, anything else as JSON text."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, default=_json_default, ensure_ascii=False)
    )
    if len(text) > limit:
        text = text[:limit] + f"…[truncated {len(text) - limit} chars]"
    return text


def attribute_value(value: Any) -> Any:
    """Coerce a value to what OpenTelemetry accepts as an attribute (else its JSON text)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    return to_text(value)


def classify_error(exc: BaseException) -> str:
    """The outcome an exception means: "timeout" for timeouts of any library, else "error".

    A cancelled task counts as a timeout: here cancellation nearly always comes from a deadline
    (a guard's or the request's) cutting the operation short.
    """
    if isinstance(exc, TimeoutError | asyncio.CancelledError) or "Timeout" in type(exc).__name__:
        return "timeout"
    return "error"


class ObservedSpan:
    """A span being recorded, with helpers that set GenAI and Watchkeeper attributes."""

    __slots__ = (
        "_capture_in",
        "_capture_out",
        "_ended",
        "_error_type",
        "_input_tokens",
        "_kind",
        "_model",
        "_outcome",
        "_output_tokens",
        "_provider",
        "_request_state",
        "_request_token",
        "_rt",
        "_span",
        "_t0",
        "_token",
        "_written_outcome",
    )

    def __init__(
        self,
        rt: Runtime | None,
        span: Span | None,
        kind: str = "workflow",
        capture_in: bool = False,
        capture_out: bool = False,
    ) -> None:
        self._rt = rt
        self._span = span
        self._kind = kind
        self._capture_in = capture_in
        self._capture_out = capture_out
        if kind in _CLIENT_KINDS:  # what a model call's metrics need; no other span reads it
            self._t0 = time.perf_counter()
            self._provider: str | None = None
            self._model: str | None = None
            self._input_tokens: int | None = None
            self._output_tokens: int | None = None
        self._ended = span is None
        self._outcome: str | None = None
        # The outcome attribute the span already carries (set with its start attributes by a
        # caller that expects it, as the guard does); written again at the end only if it changed.
        self._written_outcome: str | None = None
        self._error_type: str | None = None
        self._token: object | None = None
        self._request_state: RequestState | None = None
        self._request_token: Token[RequestState | None] | None = None

    # --- identity ---------------------------------------------------------------------------
    @property
    def trace_id(self) -> str:
        """The trace id as 32 hex characters ("" on the no-op handle)."""
        if self._span is None:
            return ""
        return format(self._span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        """The span id as 16 hex characters ("" on the no-op handle)."""
        if self._span is None:
            return ""
        return format(self._span.get_span_context().span_id, "016x")

    @property
    def otel_span(self) -> Span:
        """The underlying OpenTelemetry span (a non-recording one on the no-op handle)."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    # --- attributes ---------------------------------------------------------------------------
    def set(self, attributes: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Set attributes (names with dots go in the mapping: `set({"a.b": 1})`)."""
        span = self._span
        if span is None:
            return
        try:
            for key, value in {**(attributes or {}), **kwargs}.items():
                if value is not None:
                    span.set_attribute(key, attribute_value(value))
        except Exception as exc:
            report_failure("span.set", exc)

    def _content(self, key: str, value: Any, enabled: bool) -> None:
        if self._span is None or not enabled:
            return
        try:
            text = to_text(value)
            redactor = self._rt.redactor if self._rt is not None else None
            if redactor is not None:
                text = redactor(text)
            self._span.set_attribute(key, text)
        except Exception as exc:
            report_failure("span.content", exc)

    def set_input(self, value: Any) -> None:
        """Record the input (prompt, arguments) when content capture is on; redacted."""
        self._content(c.WK_INPUT, value, self._capture_in)

    def set_output(self, value: Any) -> None:
        """Record the output (completion, result) when content capture is on; redacted."""
        self._content(c.WK_OUTPUT, value, self._capture_out)

    def set_model(
        self, request: str | None = None, response: str | None = None, provider: str | None = None
    ) -> None:
        """Set the requested model, the model that answered, and the provider."""
        if self._span is None:
            return
        if request is not None:
            self._model = request
            self._span.set_attribute(c.GEN_AI_REQUEST_MODEL, request)
        if response is not None:
            self._span.set_attribute(c.GEN_AI_RESPONSE_MODEL, response)
        if provider is not None:
            self._provider = provider
            self._span.set_attribute(c.GEN_AI_PROVIDER_NAME, provider)

    def set_usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Set token counts (GenAI usage attributes); None leaves a count unset."""
        span = self._span
        if span is None:
            return
        if input_tokens is not None:
            self._input_tokens = int(input_tokens)
        if output_tokens is not None:
            self._output_tokens = int(output_tokens)
        for key, value in (
            (c.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
            (c.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
            (c.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read_tokens),
            (c.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, cache_write_tokens),
            (c.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning_tokens),
        ):
            if value is not None:
                span.set_attribute(key, int(value))

    def set_outcome(self, outcome: str, error_type: str | None = None) -> None:
        """Say how the operation ended: success, error, timeout, fallback or rejected."""
        if self._span is None:
            return
        if outcome not in OUTCOMES:
            report_failure("span.outcome", ValueError(f"outcome {outcome!r} not in {OUTCOMES}"))
            return
        self._outcome = outcome
        if error_type is not None:
            self._error_type = error_type
            self._span.set_attribute(c.ERROR_TYPE, error_type)

    def record_error(self, exc: BaseException) -> None:
        """Record an exception: event, error status, `error.type`, outcome error or timeout."""
        span = self._span
        if span is None:
            return
        try:
            record_exception(span, exc)
            self._error_type = self._error_type or type(exc).__qualname__
            span.set_attribute(c.ERROR_TYPE, self._error_type)
            self._outcome = classify_error(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
        except Exception as failure:
            report_failure("span.record_error", failure)

    def add_event(self, name: str, **attributes: Any) -> None:
        """Add a timestamped event to the span."""
        if self._span is None:
            return
        try:
            self._span.add_event(name, {k: attribute_value(v) for k, v in attributes.items()})
        except Exception as exc:
            report_failure("span.add_event", exc)

    # --- lifecycle ------------------------------------------------------------------------------
    def attach(self) -> object:
        """Make this span the current one; returns a token for `detach`."""
        return otel_context.attach(trace.set_span_in_context(self.otel_span))

    def end(self, error: BaseException | None = None, end_time: int | None = None) -> None:
        """End the span (once), with `error` if the operation raised it; records metrics.

        `end_time` (ns since the epoch) ends it at a moment already past (default: now).
        One flat method: it runs on every span, and each call level costs.
        """
        if self._ended:
            return
        self._ended = True
        span = self._span
        assert span is not None
        try:
            try:
                if error is not None:
                    self.record_error(error)
                state = self._request_state
                outcome = self._outcome or (state and state.outcome) or "success"
                if state is not None and state.attributes:
                    span.set_attributes(state.attributes)
                if outcome != self._written_outcome:
                    span.set_attribute(c.WK_OUTCOME, outcome)
                if outcome in ("error", "timeout") and error is None:
                    span.set_status(Status(StatusCode.ERROR, self._error_type or outcome))
            finally:  # whatever failed above, the app's context must be restored
                token, self._token = self._token, None
                if token is not None:
                    try:  # noqa: SIM105 (as in detach_quietly, here without the call)
                        otel_context.detach(token)  # type: ignore[arg-type]
                    except Exception:  # detached in another context: nothing to undo
                        pass
                request_token = self._request_token
                if request_token is not None:
                    self._request_token = None
                    # Not contextlib.suppress: on every root span's end; a try costs nothing.
                    try:  # noqa: SIM105
                        REQUEST.reset(request_token)
                    except ValueError:  # ended in another context (a generator's finaliser)
                        pass
            span.end(end_time)
            if self._kind in _CLIENT_KINDS and self._rt is not None:
                self._record_metrics(self._rt, time.perf_counter() - self._t0)
        except Exception as exc:
            report_failure("span.end", exc)

    def _record_metrics(self, rt: Runtime, duration: float) -> None:
        op = GEN_AI_OPERATION[self._kind]
        provider, model = self._provider or "", self._model or ""
        m = rt.metrics
        m.genai_duration.labels(op, provider, model, self._error_type or "").observe(duration)
        if self._input_tokens is not None:
            m.genai_tokens.labels(op, provider, model, "input").observe(self._input_tokens)
        if self._output_tokens is not None:
            m.genai_tokens.labels(op, provider, model, "output").observe(self._output_tokens)


def detach_quietly(token: object) -> None:
    """Restore the context `token` came from; in another context there is nothing to undo."""
    # Not contextlib.suppress: on every span's end, and a try costs nothing unraised.
    try:  # noqa: SIM105
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception:
        pass


NOOP = ObservedSpan(None, None)


def record_exception(span: Span, exc: BaseException) -> None:
    """`span.record_exception(exc)`, but the guard's own errors (`GuardTimeout`,
    `CircuitOpen`) without a stack trace: theirs is always the guard's frames, and formatting
    one costs ~0.3 ms on Python 3.11 (it stats and parses each frame's source line), paid by
    every caller whose call timed out with others at once."""
    if not isinstance(exc, GuardTimeout | CircuitOpen):
        span.record_exception(exc)
        return
    attrs = {
        c.EXCEPTION_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception.message": str(exc),
        "exception.escaped": "False",
    }
    span.add_event(c.EXCEPTION_EVENT, attrs)


def span_attributes(
    name: str, kind: str, attributes: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The attributes a span of `kind` starts with (before the `context()` ones)."""
    attrs: dict[str, Any] = {c.WK_OPERATION: kind}
    op = GEN_AI_OPERATION.get(kind)
    if op is not None:
        attrs[c.GEN_AI_OPERATION_NAME] = op
    if kind == "tool":
        attrs[c.GEN_AI_TOOL_NAME] = name
    elif kind == "agent":
        attrs[c.GEN_AI_AGENT_NAME] = name
    if attributes:
        for key, value in attributes.items():
            if value is not None:
                attrs[key] = attribute_value(value)
    return attrs


def default_span_kind(kind: str) -> SpanKind:
    """CLIENT for model calls (GenAI semconv), INTERNAL otherwise."""
    return SpanKind.CLIENT if kind in _CLIENT_KINDS else SpanKind.INTERNAL


def start_span(
    rt: Runtime,
    name: str,
    kind: str = "workflow",
    attributes: Mapping[str, Any] | None = None,
    *,
    capture_input: bool | None = None,
    capture_output: bool | None = None,
    activate: bool = True,
    span_kind: SpanKind | None = None,
) -> ObservedSpan:
    """Start a span for an operation of `kind`; `activate` makes it the current span.

    Content is captured only when `init(capture_content=True)`; the per-span flags can turn
    it off for one span, not on. A root span (no parent) tracks guard outcomes beneath it.
    """
    return open_span(
        rt,
        name,
        kind,
        span_attributes(name, kind, attributes),
        span_kind or default_span_kind(kind),
        capture_input,
        capture_output,
        activate,
    )


def open_span(
    rt: Runtime,
    name: str,
    kind: str,
    attrs: dict[str, Any],
    span_kind: SpanKind,
    capture_input: bool | None,
    capture_output: bool | None,
    activate: bool,
    *,
    parent: Span | None = None,
    start_time: int | None = None,
    request: bool = True,
) -> ObservedSpan:
    """`start_span` with the attributes already built (the decorator's fast path).

    `parent` (default: the current span) and `start_time` (ns since the epoch) record a span
    after the fact, as the guard does for a first attempt that failed. With `request` an active
    root span is a request of its own (see below); a guard span never is.
    """
    ctx_attrs = ATTRS.get()
    if ctx_attrs:
        attrs = {**ctx_attrs, **attrs}  # what the span says about itself wins
    context = None if parent is None else trace.set_span_in_context(parent)
    # Positional: keyword arguments cost more on a call made for every span.
    span = rt.tracer.start_span(name, context, span_kind, attrs, (), start_time)
    capture = rt.settings.capture_content
    obs = ObservedSpan(
        rt,
        span,
        kind,
        capture and capture_input is not False,
        capture and capture_output is not False,
    )
    obs._written_outcome = attrs.get(c.WK_OUTCOME)
    if activate:
        # A span with no request around it (no server span, no enclosing root) is a request
        # of its own: guards beneath it report fallbacks/timeouts to it.
        if request and REQUEST.get() is None and _is_root(span, parent):
            obs._request_state = RequestState()
            obs._request_token = REQUEST.set(obs._request_state)
        obs._token = otel_context.attach(trace.set_span_in_context(span))
    return obs


def _is_root(span: Span, parent: Span | None) -> bool:
    """Whether `span` has no valid parent (a recording SDK span knows; else ask the context)."""
    parent_context = getattr(span, "parent", False)  # the SDK's span: None when it is a root
    if parent_context is not False:
        return parent_context is None
    outer = parent if parent is not None else trace.get_current_span()
    return not outer.get_span_context().is_valid
