"""OpenInference's OpenAI instrumentor, end to end: the real `openai` client calls a fake
provider, the real instrumentor traces it, the real OTLP exporter sends the spans to our
receiver, and the stored rows say which model each call used, its tokens, cost and outcome.

Failed calls matter most: the instrumentor names a model only from the response, so a call
the provider refused carries its model only in its invocation parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor

from tests.ingest._instrumented import instrumented, stored
from tests.ingest.conftest import Receiver
from watchkeeper.demo.fake_providers import SNAPSHOTS, FakeServer, fake_openai
from watchkeeper.model import SpanRow
from watchkeeper.store import SpanFilter

SERVICE = "openinference-app"
FAIL = {"x-fake-status": "500"}


@pytest.fixture(scope="module")
def provider_api() -> Iterator[FakeServer]:
    """A fake OpenAI API on 127.0.0.1."""
    with fake_openai() as server:
        yield server


@pytest.fixture
def client(receiver: Receiver, provider_api: FakeServer) -> Iterator[openai.OpenAI]:
    """An OpenAI client traced by OpenInference, exporting each span to the receiver."""
    with instrumented(receiver, OpenAIInstrumentor(), SERVICE):
        yield openai.OpenAI(
            base_url=provider_api.url + "/v1", api_key="k", max_retries=0, timeout=10
        )


def _columns(row: SpanRow) -> tuple[Any, ...]:
    return (row.operation, row.provider, row.request_model or row.response_model, row.outcome)


@pytest.mark.slow
def test_each_call_keeps_its_model_tokens_cost_and_outcome(
    receiver: Receiver, client: openai.OpenAI
) -> None:
    chat: Any = [{"role": "user", "content": "Is the refund policy 30 days?"}]
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=chat)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=chat, extra_headers=FAIL)
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4.1", messages=chat, extra_headers={"x-fake-latency": "2"}
        )
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"])
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-large", input="x", extra_headers=FAIL)

    ok_chat, failed_chat, slow_chat, embedded, failed_embedding = stored(receiver, SERVICE, 5)
    assert answer.usage is not None and vectors.usage is not None
    assert _columns(ok_chat) == ("llm", "openai", SNAPSHOTS["gpt-4o-mini"], "success")
    assert (ok_chat.input_tokens, ok_chat.output_tokens) == (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
    )
    assert ok_chat.cost_source == "estimated" and (ok_chat.cost_usd or 0) > 0
    assert _columns(failed_chat) == ("llm", "openai", "gpt-4o", "error")
    assert _columns(slow_chat) == ("llm", "openai", "gpt-4.1", "timeout")
    for failed in (failed_chat, slow_chat, failed_embedding):
        assert (failed.input_tokens, failed.cost_source, failed.cost_usd) == (None, "none", None)
    assert _columns(embedded) == ("embedding", "openai", "text-embedding-3-small", "success")
    assert embedded.input_tokens == vectors.usage.prompt_tokens > 0
    assert embedded.cost_source == "estimated" and (embedded.cost_usd or 0) > 0
    assert _columns(failed_embedding) == (
        "embedding",
        "openai",
        "text-embedding-3-large",
        "error",
    )


@pytest.mark.slow
def test_failures_and_timeouts_count_per_model(receiver: Receiver, client: openai.OpenAI) -> None:
    chat: Any = [{"role": "user", "content": "hello"}]
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o", messages=chat, extra_headers=FAIL)
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o", messages=chat, extra_headers={"x-fake-latency": "2"}
        )
    stored(receiver, SERVICE, 3)
    groups = receiver.store.breakdown(SpanFilter("default", services=(SERVICE,)), "model", 10)
    assert [(g.key, g.summary.errors, g.summary.timeouts) for g in groups] == [("gpt-4o", 2, 1)]
