"""`instrument_anthropic` with the real `anthropic` client against the fake Anthropic server."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from tests.sdk.conftest import Sdk

import watchkeeper
from watchkeeper.demo.fake_providers import FakeServer
from watchkeeper.model import conventions as c

MSG: Any = [{"role": "user", "content": "My card is 4111 1111 1111 1111, what now?"}]
CACHE = {"x-fake-cached": "0.5", "x-fake-cache-write": "0.25"}


def client(server: FakeServer, retries: int = 0) -> anthropic.Anthropic:
    return watchkeeper.instrument_anthropic(
        anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=retries)
    )


def aclient(server: FakeServer) -> anthropic.AsyncAnthropic:
    return watchkeeper.instrument_anthropic(
        anthropic.AsyncAnthropic(base_url=server.url, api_key="k", max_retries=0)
    )


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_message_usage_counts_cache_reads_and_writes_as_input(
    sdk: Sdk, anthropic_server: FakeServer
) -> None:
    m = client(anthropic_server).messages.create(
        model="claude-sonnet-4", max_tokens=300, messages=MSG, extra_headers=CACHE
    )
    [span] = sdk.spans()
    a = attrs(span)
    u = m.usage
    assert span.name == "chat claude-sonnet-4"
    assert a[c.GEN_AI_PROVIDER_NAME] == "anthropic" and a[c.GEN_AI_OPERATION_NAME] == "chat"
    assert (
        a[c.GEN_AI_RESPONSE_MODEL] == "claude-sonnet-4-20250514" and a[c.GEN_AI_RESPONSE_ID] == m.id
    )
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[c.GEN_AI_REQUEST_MAX_TOKENS] == 300
    assert u.cache_read_input_tokens and u.cache_creation_input_tokens
    total_in = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
    assert a[c.GEN_AI_USAGE_INPUT_TOKENS] == total_in
    assert a[c.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == u.cache_read_input_tokens
    assert a[c.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == u.cache_creation_input_tokens
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == u.output_tokens


def test_stream_events_build_the_same_span(sdk_capture: Sdk, anthropic_server: FakeServer) -> None:
    stream = client(anthropic_server).messages.create(
        model="claude-sonnet-4",
        max_tokens=300,
        system="Answer briefly.",
        messages=MSG,
        stream=True,
        extra_headers=CACHE,
    )
    assert isinstance(stream, anthropic.Stream)
    events = list(stream)
    [span] = sdk_capture.spans()
    a = attrs(span)
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    start = events[0].message.usage  # type: ignore[union-attr]
    assert a[c.GEN_AI_USAGE_INPUT_TOKENS] == (
        start.input_tokens + start.cache_read_input_tokens + start.cache_creation_input_tokens
    )
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == events[-2].usage.output_tokens  # type: ignore[union-attr]
    assert a[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[c.WK_LLM_TIME_TO_FIRST_CHUNK_S] > 0
    assert json.loads(a[c.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    assert a[c.GEN_AI_SYSTEM_INSTRUCTIONS] == "Answer briefly."
    assert "4111 1111 1111 1111" not in a[c.GEN_AI_INPUT_MESSAGES]  # redacted
    assert "[REDACTED:card]" in a[c.GEN_AI_INPUT_MESSAGES]


async def test_async_message_and_stream(sdk: Sdk, anthropic_server: FakeServer) -> None:
    ac = aclient(anthropic_server)
    m = await ac.messages.create(model="claude-3-5-haiku", max_tokens=50, messages=MSG)
    stream = await ac.messages.create(
        model="claude-3-5-haiku", max_tokens=50, messages=MSG, stream=True
    )
    assert isinstance(stream, anthropic.AsyncStream)
    async for _ in stream:
        break
    await stream.close()  # closed before the end: the span still ends
    plain, closed = sdk.spans()
    assert attrs(plain)[c.GEN_AI_RESPONSE_ID] == m.id
    assert "gen_ai.stream.closed" in [e.name for e in closed.events]


def test_rate_limit_retry_and_final_failure(sdk: Sdk, anthropic_server: FakeServer) -> None:
    retried = {"x-fake-status": "429", "x-fake-fail-attempts": "2", "x-fake-retry-after": "0.01"}
    client(anthropic_server, retries=2).messages.create(
        model="claude-sonnet-4", max_tokens=10, messages=MSG, extra_headers=retried
    )
    with pytest.raises(anthropic.RateLimitError):
        client(anthropic_server).messages.create(
            model="claude-sonnet-4", max_tokens=10, messages=MSG,
            extra_headers={"x-fake-status": "429"},
        )  # fmt: skip
    ok, failed = sdk.spans()
    assert attrs(ok)[c.HTTP_REQUEST_RESEND_COUNT] == 2 and attrs(ok)[c.WK_OUTCOME] == "success"
    statuses = [dict(e.attributes or {})[c.HTTP_RESPONSE_STATUS_CODE] for e in ok.events]
    assert statuses == [429, 429, 200]
    f = attrs(failed)
    assert f[c.ERROR_TYPE] == "RateLimitError" and f[c.HTTP_RESPONSE_STATUS_CODE] == 429
    assert f[c.WK_OUTCOME] == "error"


def test_spans_nest_under_the_apps_span(sdk: Sdk, anthropic_server: FakeServer) -> None:
    with watchkeeper.observe("answer", kind="workflow") as outer:
        client(anthropic_server).messages.create(
            model="claude-sonnet-4", max_tokens=10, messages=MSG
        )
    llm, parent = sdk.spans()
    assert llm.parent is not None and llm.parent.span_id == parent.context.span_id
    assert format(llm.context.trace_id, "032x") == outer.trace_id


def test_stream_helper_is_traced(sdk_capture: Sdk, anthropic_server: FakeServer) -> None:
    with client(anthropic_server).messages.stream(
        model="claude-sonnet-4", max_tokens=100, messages=MSG
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    [span] = sdk_capture.spans()
    a = attrs(span)
    assert a[c.GEN_AI_RESPONSE_ID] == final.id and a[c.WK_LLM_STREAMING] is True
    assert a[c.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert json.loads(a[c.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    assert "gen_ai.stream.closed" not in [e.name for e in span.events]


async def test_async_stream_helper_left_early_still_ends(
    sdk: Sdk, anthropic_server: FakeServer
) -> None:
    async with aclient(anthropic_server).messages.stream(
        model="claude-sonnet-4", max_tokens=100, messages=MSG
    ) as stream:
        async for _ in stream:
            break
    [span] = sdk.spans()
    assert "gen_ai.stream.closed" in [e.name for e in span.events]
    assert attrs(span)[c.WK_LLM_TIME_TO_FIRST_CHUNK_S] > 0


def test_stream_helper_error_passes_through(sdk: Sdk, anthropic_server: FakeServer) -> None:
    manager = client(anthropic_server).messages.stream(
        model="claude-sonnet-4", max_tokens=10, messages=MSG,
        extra_headers={"x-fake-status": "500"},
    )  # fmt: skip
    with pytest.raises(anthropic.InternalServerError), manager:
        pass
    [span] = sdk.spans()
    assert attrs(span)[c.WK_OUTCOME] == "error" and attrs(span)[c.HTTP_RESPONSE_STATUS_CODE] == 500


def test_instrumenting_the_module_traces_every_client(
    sdk: Sdk, anthropic_server: FakeServer
) -> None:
    from anthropic.resources import messages as module

    try:
        watchkeeper.instrument_anthropic(anthropic)
        ac = anthropic.Anthropic(base_url=anthropic_server.url, api_key="k", max_retries=0)
        ac.messages.create(model="claude-sonnet-4", max_tokens=10, messages=MSG)
        with ac.messages.stream(model="claude-sonnet-4", max_tokens=10, messages=MSG) as s:
            s.until_done()
        assert sdk.names() == ["chat claude-sonnet-4"] * 2
    finally:  # put the classes back as they were, for the other tests
        for cls in (module.Messages, module.AsyncMessages):
            for name in ("create", "stream"):
                method = cls.__dict__.get(name)
                if getattr(method, "__watchkeeper_wrapped__", False):
                    setattr(cls, name, method.__wrapped__)
