"""`instrument_anthropic()`: spans for Anthropic Messages API calls (plain and streamed).

Anthropic reports `input_tokens` without the prompt-cache reads and writes; GenAI semconv (and
our pricing) count every input token, so the span's input is the sum of the three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchkeeper.model import conventions as c
from watchkeeper.sdk._openai import (
    Adapter,
    StreamState,
    _get,
    _int,
    _request_params,
    instrument_resources,
    messages_to_semconv,
    record_response_basics,
    record_usage,
    tool_part,
)
from watchkeeper.sdk._span import ObservedSpan


def anthropic_usage(usage: Any) -> dict[str, int | None]:
    """Anthropic usage, provider-neutral: input includes cache reads and writes."""
    if usage is None:
        return {}
    raw_in = _int(_get(usage, "input_tokens"))
    read = _int(_get(usage, "cache_read_input_tokens"))
    write = _int(_get(usage, "cache_creation_input_tokens"))
    total_in = None if raw_in is None else raw_in + (read or 0) + (write or 0)
    return {
        "input": total_in,
        "output": _int(_get(usage, "output_tokens")),
        "cache_read": read,
        "cache_write": write,
    }


def _system_text(system: Any) -> Any:
    if isinstance(system, list):
        return [{"type": "text", "content": _get(b, "text")} for b in system]
    return system


class Messages:
    """`messages.create`."""

    provider, kind = "anthropic", "llm"

    def request(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return _request_params(kwargs, "max_tokens")

    def input(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            c.GEN_AI_INPUT_MESSAGES: messages_to_semconv(kwargs.get("messages")),
            c.GEN_AI_SYSTEM_INSTRUCTIONS: _system_text(kwargs.get("system")),
        }

    def response(self, obs: ObservedSpan, result: Any) -> list[dict[str, Any]] | None:
        stop = _get(result, "stop_reason")
        finish = [str(stop)] if stop else []
        record_response_basics(
            obs, self.provider, _get(result, "id"), _get(result, "model"), finish
        )
        record_usage(obs, anthropic_usage(_get(result, "usage")))
        parts: list[dict[str, Any]] = []
        for block in _get(result, "content") or []:
            kind = _get(block, "type")
            if kind == "text":
                parts.append({"type": "text", "content": _get(block, "text")})
            elif kind == "tool_use":
                parts.append(
                    tool_part(_get(block, "id"), _get(block, "name"), _get(block, "input"))
                )
        return [{"role": "assistant", "parts": parts, "finish_reason": stop}]

    def chunk(self, state: StreamState, event: Any) -> None:
        kind = _get(event, "type")
        if kind == "message_start":
            message = _get(event, "message")
            state.response_id = _get(message, "id")
            state.response_model = _get(message, "model")
            state.usage = anthropic_usage(_get(message, "usage"))
        elif kind == "content_block_delta":
            text = _get(_get(event, "delta"), "text")
            if isinstance(text, str):
                state.text.append(text)
        elif kind == "message_delta":
            stop = _get(_get(event, "delta"), "stop_reason")
            if stop:
                state.finish_reasons = [str(stop)]
            self._delta_usage(state, _get(event, "usage"))

    @staticmethod
    def _delta_usage(state: StreamState, usage: Any) -> None:
        # message_delta carries the final output count (and, lately, input counts too).
        output = _int(_get(usage, "output_tokens"))
        if output is not None:
            state.usage["output"] = output
        if _int(_get(usage, "input_tokens")) is not None:
            merged = anthropic_usage(usage)
            state.usage.update({k: v for k, v in merged.items() if k != "output" and v is not None})


ANTHROPIC_RESOURCES: dict[str, tuple[str, str, str, Adapter]] = {
    "messages": ("anthropic.resources.messages", "Messages", "AsyncMessages", Messages()),
}


def instrument_anthropic(client: Any) -> Any:
    """Trace an Anthropic client (sync or async), a client class, or the module; returns it."""
    return instrument_resources(client, ANTHROPIC_RESOURCES, "anthropic")
