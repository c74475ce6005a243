"""The fake providers answer the real `openai` and `anthropic` clients as the live APIs do."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import anthropic
import openai
import pytest

from watchkeeper.demo._wire import EMBEDDING_DIM
from watchkeeper.demo.fake_providers import (
    FakeRequest,
    FakeServer,
    RandomProfile,
    fake_anthropic,
    fake_openai,
)

MSG = [{"role": "user", "content": "How do I roll back a deployment?"}]


@pytest.fixture(scope="module")
def oai_server() -> Iterator[FakeServer]:
    with fake_openai() as server:
        yield server


@pytest.fixture(scope="module")
def ant_server() -> Iterator[FakeServer]:
    with fake_anthropic() as server:
        yield server


def oai(server: FakeServer, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=retries)


def test_chat_completion_reports_cached_and_reasoning_tokens(oai_server: FakeServer) -> None:
    headers = {"x-fake-cached": "0.5", "x-fake-reasoning": "30"}
    r = oai(oai_server).chat.completions.create(
        model="gpt-4o-mini",
        messages=MSG,
        extra_headers=headers,  # type: ignore[arg-type]
    )
    assert r.model == "gpt-4o-mini-2024-07-18"
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.content
    assert r.usage is not None and r.usage.prompt_tokens > 0
    assert r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == r.usage.prompt_tokens // 2
    assert r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 30


def test_streamed_chat_ends_with_a_usage_chunk(oai_server: FakeServer) -> None:
    stream = oai(oai_server).chat.completions.create(
        model="gpt-4.1",
        messages=MSG,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


@pytest.mark.slow
def test_responses_api_plain_and_streamed(oai_server: FakeServer) -> None:
    client = oai(oai_server)
    r = client.responses.create(model="gpt-4.1", input="hello", max_output_tokens=40)
    assert r.output_text and r.usage is not None and r.usage.output_tokens > 0
    events = list(client.responses.create(model="gpt-4.1", input="hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    with client.responses.stream(model="gpt-4.1", input="hello") as stream:  # the SDK's helper
        final = stream.get_final_response()
    assert final.output_text == "".join(
        e.delta
        for e in events
        if e.type == "response.output_text.delta"  # type: ignore[union-attr]
    )


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_similar_texts_are_close(oai_server: FakeServer, encoding: str) -> None:
    r = oai(oai_server).embeddings.create(
        model="text-embedding-3-small",
        input=["reset my password", "password reset link", "weather in Paris"],
        encoding_format=encoding,  # type: ignore[arg-type]
    )
    a, b, c = (_vector(d.embedding) for d in r.data)
    assert len(a) == EMBEDDING_DIM and r.usage.prompt_tokens > 0
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c)


def _vector(value: object) -> list[float]:
    # Asked for base64 explicitly, the client hands the string through undecoded.
    if isinstance(value, str):
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert isinstance(value, list)
    return value


def test_429_with_retry_after_then_success_is_retried(oai_server: FakeServer) -> None:
    headers = {"x-fake-status": "429", "x-fake-fail-attempts": "1", "x-fake-retry-after": "0.05"}
    raw = oai(oai_server, retries=2).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MSG,
        extra_headers=headers,  # type: ignore[arg-type]
    )
    assert raw.retries_taken == 1
    assert [r.attempt for r in list(oai_server.requests)[-2:]] == [0, 1]


def test_500_is_raised_as_the_client_error(oai_server: FakeServer) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai(oai_server).chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            extra_headers={"x-fake-status": "500"},  # type: ignore[arg-type]
        )
    assert info.value.status_code == 500


def test_anthropic_message_usage_splits_cache_reads(ant_server: FakeServer) -> None:
    client = anthropic.Anthropic(base_url=ant_server.url, api_key="k", max_retries=0)
    m = client.messages.create(
        model="claude-sonnet-4",
        max_tokens=200,
        messages=MSG,  # type: ignore[arg-type]
        extra_headers={"x-fake-cached": "0.5", "x-fake-cache-write": "0.25"},
    )
    assert m.model == "claude-sonnet-4-20250514" and m.stop_reason == "end_turn"
    assert m.usage.cache_read_input_tokens and m.usage.cache_creation_input_tokens
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


async def test_anthropic_async_stream_events(ant_server: FakeServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=ant_server.url, api_key="k", max_retries=0)
    stream = await client.messages.create(
        model="claude-sonnet-4",
        max_tokens=200,
        messages=MSG,
        stream=True,  # type: ignore[arg-type]
    )
    kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and "message_delta" in kinds


def test_anthropic_429_error_type(ant_server: FakeServer) -> None:
    client = anthropic.Anthropic(base_url=ant_server.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="claude-sonnet-4",
            max_tokens=10,
            messages=MSG,  # type: ignore[arg-type]
            extra_headers={"x-fake-status": "429"},
        )


@pytest.mark.slow
def test_random_profile_is_seeded_and_has_the_demo_mix() -> None:
    request = FakeRequest("openai", "chat", "gpt-4o-mini", False, 0, {})
    draws = [RandomProfile(seed=7)(request) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # same seed, same first draw
    profile = RandomProfile(seed=1)
    many = [profile(request) for _ in range(4000)]
    share = lambda pred: sum(map(pred, many)) / len(many)  # noqa: E731
    assert 0.015 < share(lambda b: b.status == 429) < 0.05
    assert 0.005 < share(lambda b: b.status == 500) < 0.04
    assert 0.01 < share(lambda b: b.latency_s > 8) < 0.06
    assert 0.15 < share(lambda b: b.cached_fraction > 0) < 0.35
    assert all(b.retry_after_s for b in many if b.status == 429)
