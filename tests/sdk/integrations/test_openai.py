"""`instrument_openai` with the real `openai` client against the fake OpenAI server."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from tests.sdk.conftest import Sdk, start_sdk

import watchkeeper
from watchkeeper.demo.fake_providers import FakeServer
from watchkeeper.model import conventions as c
from watchkeeper.sdk._openai import OPENAI_RESOURCES

MSG: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Mail me at jane@example.com about the rollback"},
]


def client(server: FakeServer, retries: int = 0) -> openai.OpenAI:
    return watchkeeper.instrument_openai(
        openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=retries)
    )


def aclient(server: FakeServer, retries: int = 0) -> openai.AsyncOpenAI:
    return watchkeeper.instrument_openai(
        openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=retries)
    )


def only(sdk: Sdk) -> ReadableSpan:
    [span] = sdk.spans()
    return span


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_chat_completion_span_has_genai_attributes(sdk: Sdk, openai_server: FakeServer) -> None:
    headers = {"x-fake-cached": "0.5", "x-fake-reasoning": "12"}
    r = client(openai_server).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, temperature=0.2, max_tokens=64, extra_headers=headers
    )
    span = only(sdk)
    a = attrs(span)
    assert span.name == "chat gpt-4o-mini"
    assert a[c.GEN_AI_OPERATION_NAME] == "chat" and a[c.WK_OPERATION] == "llm"
    assert a[c.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[c.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[c.GEN_AI_RESPONSE_MODEL] == r.model == "gpt-4o-mini-2024-07-18"
    assert a[c.GEN_AI_RESPONSE_ID] == r.id
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[c.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and a[c.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert r.usage is not None
    assert a[c.GEN_AI_USAGE_INPUT_TOKENS] == r.usage.prompt_tokens
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == r.usage.completion_tokens
    assert a[c.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == r.usage.prompt_tokens // 2
    assert a[c.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
    assert a[c.WK_OUTCOME] == "success"
    assert c.GEN_AI_INPUT_MESSAGES not in a and c.GEN_AI_OUTPUT_MESSAGES not in a  # capture off
    labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai",
              "gen_ai_request_model": "gpt-4o-mini", "error_type": ""}  # fmt: skip
    assert sdk.metric("gen_ai_client_operation_duration_seconds_count", labels) == 1


def test_content_capture_records_redacted_messages(
    sdk_capture: Sdk, openai_server: FakeServer
) -> None:
    r = client(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    a = attrs(only(sdk_capture))
    inputs = json.loads(a[c.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user"]
    text = inputs[1]["parts"][0]["content"]
    assert "jane@example.com" not in text and "[REDACTED:email]" in text
    output = json.loads(a[c.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == r.choices[0].message.content
    assert output[0]["finish_reason"] == "stop"


def test_stream_span_ends_when_consumed(sdk_capture: Sdk, openai_server: FakeServer) -> None:
    stream = client(openai_server).chat.completions.create(
        model="gpt-4.1", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)  # the client's own object, type unchanged
    assert sdk_capture.spans() == []  # nothing read yet: the call is still going
    chunks = list(stream)
    span = only(sdk_capture)
    a = attrs(span)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert a[c.WK_LLM_STREAMING] is True
    assert a[c.WK_LLM_TIME_TO_FIRST_CHUNK_S] > 0
    assert [e.name for e in span.events].count("gen_ai.first_chunk") == 1
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens  # type: ignore[union-attr]
    assert a[c.GEN_AI_RESPONSE_MODEL] == "gpt-4.1-2025-04-14"
    assert json.loads(a[c.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text


def test_stream_closed_early_ends_the_span(sdk: Sdk, openai_server: FakeServer) -> None:
    stream = client(openai_server).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True
    )
    with stream:
        next(iter(stream))
    span = only(sdk)
    assert "gen_ai.stream.closed" in [e.name for e in span.events]
    assert attrs(span)[c.WK_OUTCOME] == "success"


async def test_async_chat_stream_and_embeddings(sdk: Sdk, openai_server: FakeServer) -> None:
    ac = aclient(openai_server)
    r = await ac.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    stream = await ac.chat.completions.create(
        model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [ch async for ch in stream]
    emb = await ac.embeddings.create(model="text-embedding-3-small", input=["a", "b c"])
    chat, streamed, embedding = sdk.spans()
    assert attrs(chat)[c.GEN_AI_RESPONSE_ID] == r.id
    assert attrs(streamed)[c.GEN_AI_USAGE_INPUT_TOKENS] == chunks[-1].usage.prompt_tokens  # type: ignore[union-attr]
    e = attrs(embedding)
    assert embedding.name == "embeddings text-embedding-3-small"
    assert e[c.GEN_AI_OPERATION_NAME] == "embeddings" and e[c.WK_OPERATION] == "embedding"
    assert e[c.GEN_AI_USAGE_INPUT_TOKENS] == emb.usage.prompt_tokens
    assert e[c.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(emb.data[0].embedding) > 0


def test_responses_api_plain_and_streamed(sdk: Sdk, openai_server: FakeServer) -> None:
    oc = client(openai_server)
    r = oc.responses.create(
        model="gpt-4.1", input="hi", instructions="be brief", max_output_tokens=50
    )
    events = list(oc.responses.create(model="gpt-4.1", input="hi", stream=True))
    plain, streamed = sdk.spans()
    p = attrs(plain)
    assert p[c.GEN_AI_RESPONSE_ID] == r.id and p[c.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert r.usage is not None and p[c.GEN_AI_USAGE_OUTPUT_TOKENS] == r.usage.output_tokens
    assert p[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)
    s = attrs(streamed)
    assert s[c.GEN_AI_RESPONSE_ID] == events[-1].response.id  # type: ignore[union-attr]
    assert s[c.GEN_AI_USAGE_INPUT_TOKENS] > 0 and s[c.WK_LLM_TIME_TO_FIRST_CHUNK_S] > 0


def test_429_retried_by_the_client_shows_as_attempts(sdk: Sdk, openai_server: FakeServer) -> None:
    headers = {"x-fake-status": "429", "x-fake-fail-attempts": "1", "x-fake-retry-after": "0.01"}
    client(openai_server, retries=2).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, extra_headers=headers
    )
    span = only(sdk)
    attempts = [e for e in span.events if e.name == "http.attempt"]
    statuses = [dict(e.attributes or {})[c.HTTP_RESPONSE_STATUS_CODE] for e in attempts]
    assert statuses == [429, 200]
    assert attrs(span)[c.HTTP_REQUEST_RESEND_COUNT] == 1
    assert attrs(span)[c.WK_OUTCOME] == "success"


def test_500_passes_through_and_marks_the_span(sdk: Sdk, openai_server: FakeServer) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client(openai_server).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, extra_headers={"x-fake-status": "500"}
        )
    assert info.value.status_code == 500  # the client's own exception, unchanged
    span = only(sdk)
    a = attrs(span)
    assert a[c.ERROR_TYPE] == "InternalServerError" and a[c.HTTP_RESPONSE_STATUS_CODE] == 500
    assert a[c.WK_OUTCOME] == "error" and span.status.status_code is StatusCode.ERROR


def test_client_timeout_is_outcome_timeout(sdk: Sdk, openai_server: FakeServer) -> None:
    oc = client(openai_server).with_options(timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        oc.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, extra_headers={"x-fake-latency": "2"}
        )
    a = attrs(only(sdk))
    assert a[c.WK_OUTCOME] == "timeout" and a[c.ERROR_TYPE] == "APITimeoutError"


def test_no_spans_before_init_and_no_double_wrapping(openai_server: FakeServer) -> None:
    watchkeeper.shutdown()
    oc = client(openai_server)
    assert watchkeeper.instrument_openai(oc) is oc
    r = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert r.choices[0].message.content  # works untouched without the SDK


def test_instrumenting_the_class_traces_every_client(sdk: Sdk, openai_server: FakeServer) -> None:
    try:
        watchkeeper.instrument_openai(openai)
        oc = openai.OpenAI(base_url=openai_server.url + "/v1", api_key="k", max_retries=0)
        oc.embeddings.create(model="text-embedding-3-small", input="x")
        watchkeeper.instrument_openai(oc)  # instance on top of the class: still one span
        oc.embeddings.create(model="text-embedding-3-small", input="y")
        assert sdk.names() == ["embeddings text-embedding-3-small"] * 2
    finally:  # put the classes back as they were, for the other tests
        for r in OPENAI_RESOURCES:
            module = importlib.import_module(r.module)
            for cls in (getattr(module, r.sync_class), getattr(module, r.async_class)):
                for name in r.methods:
                    method = cls.__dict__.get(name)
                    if getattr(method, "__watchkeeper_wrapped__", False):
                        setattr(cls, name, method.__wrapped__)


async def test_call_cancelled_by_a_deadline_is_a_timeout(
    sdk: Sdk, openai_server: FakeServer
) -> None:
    slow = {"x-fake-latency": "5"}
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await aclient(openai_server).chat.completions.create(
                model="gpt-4o-mini", messages=MSG, extra_headers=slow
            )
    span = only(sdk)
    a = attrs(span)
    assert a[c.WK_OUTCOME] == "timeout" and a[c.ERROR_TYPE] == "cancelled"
    assert span.status.status_code is StatusCode.ERROR


def test_chat_stream_helper_goes_through_the_traced_create(
    sdk: Sdk, openai_server: FakeServer
) -> None:
    with client(openai_server).chat.completions.stream(
        model="gpt-4o-mini", messages=MSG, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    [span] = sdk.spans()
    a = attrs(span)
    assert a[c.GEN_AI_RESPONSE_ID] == final.id and a[c.WK_LLM_STREAMING] is True
    assert (
        final.usage is not None and a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.completion_tokens
    )


async def test_async_responses_stream_helper(sdk: Sdk, openai_server: FakeServer) -> None:
    async with aclient(openai_server).responses.stream(model="gpt-4.1", input="hi") as stream:
        final = await stream.get_final_response()
    [span] = sdk.spans()
    a = attrs(span)
    assert a[c.GEN_AI_RESPONSE_ID] == final.id and a[c.WK_LLM_STREAMING] is True
    assert final.usage is not None and a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens


def test_tool_calls_are_captured_as_output_parts(
    sdk_capture: Sdk, openai_server: FakeServer
) -> None:
    tools: Any = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    question = [{"role": "user", "content": "What is the weather in Oslo?"}]
    r = client(openai_server).chat.completions.create(
        model="gpt-4o-mini", messages=question, tools=tools
    )
    [call] = r.choices[0].message.tool_calls or []
    a = attrs(only(sdk_capture))
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    [message] = json.loads(a[c.GEN_AI_OUTPUT_MESSAGES])
    assert message["parts"] == [{"type": "tool_call", "id": call.id, "name": "weather",
                                 "arguments": '{"argument": "Oslo"}'}]  # fmt: skip


def test_parse_is_traced_like_create(sdk: Sdk, openai_server: FakeServer) -> None:
    r = client(openai_server).chat.completions.parse(model="gpt-4o-mini", messages=MSG)
    a = attrs(only(sdk))
    assert a[c.GEN_AI_RESPONSE_ID] == r.id and a[c.GEN_AI_OPERATION_NAME] == "chat"
    assert r.usage is not None and a[c.GEN_AI_USAGE_INPUT_TOKENS] == r.usage.prompt_tokens


def test_sampled_out_calls_still_work_and_export_nothing(openai_server: FakeServer) -> None:
    sdk = start_sdk(capture_content=True, sample_rate=0.0)
    try:
        r = client(openai_server).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert r.choices[0].message.content and sdk.spans() == []
    finally:
        watchkeeper.shutdown()
