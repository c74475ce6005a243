"""`instrument_openai()`: spans for OpenAI client calls (Chat Completions, Responses, Embeddings).

The call tracing is in `_llm` and the patching in `_instrument`; this module maps OpenAI's
requests, responses and stream chunks to span attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from watchkeeper.model import conventions as c
from watchkeeper.sdk._instrument import Resource, instrument_resources
from watchkeeper.sdk._llm import (
    StreamState,
    as_int,
    get_field,
    messages_to_semconv,
    record_response_basics,
    record_usage,
    request_params,
    tool_part,
)
from watchkeeper.sdk._span import ObservedSpan

T = TypeVar("T")


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
