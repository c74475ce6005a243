"""OpenInference's Anthropic instrumentor, end to end: the real `anthropic` client calls the
fake Anthropic API, the real instrumentor traces it, the real OTLP exporter sends the spans to
our receiver; each stored row names the model, its tokens, cost and outcome, failures too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from openinference.instrumentation.anthropic import AnthropicInstrumentor

from tests.ingest._instrumented import instrumented, stored
from tests.ingest.conftest import Receiver
from watchkeeper.demo.fake_providers import SNAPSHOTS, FakeServer, fake_anthropic

SERVICE = "openinference-anthropic-app"
FAIL = {"x-fake-status": "500"}


@pytest.fixture(scope="module")
def provider_api() -> Iterator[FakeServer]:
    """A fake Anthropic API on 127.0.0.1."""
    with fake_anthropic() as server:
        yield server


@pytest.fixture
def client(receiver: Receiver, provider_api: FakeServer) -> Iterator[anthropic.Anthropic]:
    """An Anthropic client traced by OpenInference, exporting each span to the receiver."""
    with instrumented(receiver, AnthropicInstrumentor(), SERVICE):
        yield anthropic.Anthropic(base_url=provider_api.url, api_key="k", max_retries=0)


@pytest.mark.slow
def test_each_call_keeps_its_model_tokens_cost_and_outcome(
    receiver: Receiver, client: anthropic.Anthropic
) -> None:
    ask: Any = [{"role": "user", "content": "Is the refund policy 30 days?"}]
    answer = client.messages.create(model="claude-sonnet-4", max_tokens=200, messages=ask)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(
            model="claude-3-5-haiku", max_tokens=200, messages=ask, extra_headers=FAIL
        )
    ok, failed = stored(receiver, SERVICE, 2)
    assert (ok.operation, ok.provider, ok.outcome) == ("llm", "anthropic", "success")
    assert (ok.response_model or ok.request_model) in (
        SNAPSHOTS["claude-sonnet-4"],
        "claude-sonnet-4",
    )
    assert ok.input_tokens is not None and ok.input_tokens >= answer.usage.input_tokens > 0
    assert ok.output_tokens == answer.usage.output_tokens
    assert ok.cost_source == "estimated" and (ok.cost_usd or 0) > 0
    assert (failed.operation, failed.provider, failed.outcome) == ("llm", "anthropic", "error")
    assert failed.request_model == "claude-3-5-haiku"  # named only in its parameters
    assert (failed.input_tokens, failed.cost_source) == (None, "none")
