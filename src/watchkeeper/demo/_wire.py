"""Pure builders of OpenAI and Anthropic wire payloads, as the real APIs send them.

The shapes follow the types of the `openai` and `anthropic` client packages (chat completion and
its chunks, Responses API objects and stream events, embeddings, Anthropic messages and their
stream events), so the real clients parse what the fake servers send.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

EMBEDDING_DIM = 256
_STOP_WORDS = (
    "a an and are at be by can do does for from how i in is it my of on or the to what when "
    "where which who why with you your"
)
_STOP = frozenset(_STOP_WORDS.split())

_TEXT = (
    "the answer depends on the context you gave and the documents retrieved for this question "
    "in short we recommend checking the configuration first then the logs and finally the "
    "deployment status because most incidents start with a recent change to one of them"
)
_VOCAB = tuple(_TEXT.split())


@dataclass(frozen=True)
class Usage:
    """Token counts of one fake call, in provider-neutral terms."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


def count_tokens(text: str) -> int:
    """A rough token count (about four characters a token), at least one."""
    return max(1, math.ceil(len(text) / 4))


def answer_text(prompt: str, words: int) -> str:
    """A deterministic answer of `words` words, chosen from the prompt's hash."""
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
    picked = [_VOCAB[(seed + i * 7) % len(_VOCAB)] for i in range(max(1, words))]
    return " ".join(picked).capitalize() + "."


def split_chunks(text: str, parts: int) -> list[str]:
    """Split text into at most `parts` pieces on word boundaries (stream deltas)."""
    words = text.split(" ")
    size = max(1, math.ceil(len(words) / max(1, parts)))
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g if i == 0 else " " + g for i, g in enumerate(groups)]


def embed(text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """A unit vector of hashed word counts: texts sharing words land close together."""
    vec = [0.0] * dim
    for word in text.lower().split():
        token = word.strip(".,;:!?\"'()")
        if token and token not in _STOP:
            token = token[:5]  # a crude stem: "signed"/"signature", "limits"/"limit" meet
            vec[int.from_bytes(hashlib.md5(token.encode()).digest()[:2], "big") % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def prompt_of_messages(messages: Sequence[Any]) -> str:
    """All text content of chat messages (OpenAI or Anthropic shape), joined."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [b.get("text", "") for b in content if isinstance(b, dict)]
    return "\n".join(p for p in parts if p)


def prompt_of_input(value: Any) -> str:
    """The text of a Responses API `input` (a string or a list of items)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return prompt_of_messages(value)
    return ""


# --- OpenAI ---------------------------------------------------------------------------------


def openai_usage(u: Usage) -> dict[str, Any]:
    """Chat completions `usage` with cached and reasoning token details."""
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


ToolUse = tuple[str, str, dict[str, Any]]  # (call id, tool name, arguments)


def chat_completion(
    rid: str, model: str, text: str, u: Usage, created: int, tool_calls: Sequence[ToolUse] = ()
) -> dict[str, Any]:
    """A `chat.completion` object; with `tool_calls`, the model asks for tools instead."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for cid, name, args in tool_calls
        ]
    return {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": openai_usage(u),
    }


def chat_chunks(
    rid: str, model: str, text: str, u: Usage, created: int, *, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed answer (usage last, if asked)."""
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
    base["system_fingerprint"] = "fp_fake"
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    first = {"role": "assistant", "content": "", "refusal": None}
    yield {**base, "choices": [_chunk_choice(first, None)], **extra}
    for piece in split_chunks(text, 6):
        yield {**base, "choices": [_chunk_choice({"content": piece}, None)], **extra}
    yield {**base, "choices": [_chunk_choice({}, "stop")], **extra}
    if include_usage:
        yield {**base, "choices": [], "usage": openai_usage(u)}


def _chunk_choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def response_object(
    rid: str, model: str, text: str, u: Usage, created: float, *, done: bool, body: dict[str, Any]
) -> dict[str, Any]:
    """A Responses API `response` object (in progress, or completed with output and usage)."""
    message = {
        "type": "message",
        "id": "msg_" + rid[5:],
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    usage = {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "completed" if done else "in_progress",
        "model": model,
        "output": [message] if done else [],
        "usage": usage if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "tool_choice": "auto",
        "tools": [],
    }


def response_events(
    rid: str, model: str, text: str, u: Usage, created: float, body: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The stream events of a Responses API call, in the order the live API sends them."""
    item_id = "msg_" + rid[5:]
    start = response_object(rid, model, "", u, created, done=False, body=body)
    done = response_object(rid, model, text, u, created, done=True, body=body)
    item = {**done["output"][0], "status": "in_progress", "content": []}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **where, "part": part},
    ]
    for piece in split_chunks(text, 6):
        events.append(
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
        )
    events += [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]},
        {"type": "response.completed", "response": done},
    ]
    for seq, event in enumerate(events):
        yield {**event, "sequence_number": seq}


def embeddings(model: str, inputs: Sequence[str], encoding: str) -> dict[str, Any]:
    """A `list` of embeddings, as floats or base64 little-endian float32."""
    data = []
    for i, text in enumerate(inputs):
        vec = embed(text)
        value: Any = vec
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(count_tokens(t) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def openai_error(status: int) -> dict[str, Any]:
    """The error body OpenAI sends with a failing status."""
    kind = {429: "rate_limit_exceeded", 408: "timeout"}.get(status, "server_error")
    message = "Rate limit reached, retry later" if status == 429 else "The server had an error"
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


# --- Anthropic ------------------------------------------------------------------------------


def anthropic_usage(u: Usage) -> dict[str, Any]:
    """Anthropic `usage`: input tokens exclude the cached ones, which are counted apart."""
    return {
        "input_tokens": u.input_tokens - u.cached_tokens - u.cache_write_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "service_tier": "standard",
    }


def message(
    rid: str, model: str, text: str, u: Usage, tool_uses: Sequence[ToolUse] = ()
) -> dict[str, Any]:
    """An Anthropic `message` object; with `tool_uses`, the model asks for tools."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [
        {"type": "tool_use", "id": cid, "name": name, "input": args}
        for cid, name, args in tool_uses
    ]
    return {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if tool_uses else "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(u),
    }


def message_events(rid: str, model: str, text: str, u: Usage) -> Iterator[dict[str, Any]]:
    """Anthropic stream events: message_start, content block deltas, message_delta, stop."""
    start = {**message(rid, model, "", u), "content": [], "stop_reason": None}
    start["usage"] = {**anthropic_usage(u), "output_tokens": 1}
    yield {"type": "message_start", "message": start}
    block = {"type": "text", "text": ""}
    yield {"type": "content_block_start", "index": 0, "content_block": block}
    yield {"type": "ping"}
    for piece in split_chunks(text, 6):
        delta = {"type": "text_delta", "text": piece}
        yield {"type": "content_block_delta", "index": 0, "delta": delta}
    yield {"type": "content_block_stop", "index": 0}
    delta_usage = {"output_tokens": u.output_tokens}
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    yield {"type": "message_delta", "delta": stop, "usage": delta_usage}
    yield {"type": "message_stop"}


def anthropic_error(status: int) -> dict[str, Any]:
    """The error body Anthropic sends with a failing status."""
    kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
