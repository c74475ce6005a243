"""The demo service's requests, traced: span tree, fallbacks, cache and metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from tests.sdk.conftest import Sdk, start_sdk

import watchkeeper
from watchkeeper.demo._app import Upstreams, create_demo_app
from watchkeeper.demo._service import CANNED_ANSWER, DemoOptions
from watchkeeper.demo.fake_providers import Behaviour, FakeRequest, fake_anthropic, fake_openai
from watchkeeper.model import conventions as c

Rule = Callable[[FakeRequest], Behaviour | None]
HEADERS = {"x-user-id": "user-1", "x-session-id": "sess-1"}


class Switchboard:
    """A profile a test rewires between requests: the first matching rule decides."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def __call__(self, request: FakeRequest) -> Behaviour:
        for rule in self.rules:
            found = rule(request)
            if found is not None:
                return found
        return Behaviour()


@pytest.fixture
def demo() -> Iterator[tuple[TestClient, Sdk, Switchboard]]:
    board = Switchboard()
    sdk = start_sdk(capture_content=True)
    options = DemoOptions(deadline_s=0.4, fallback_timeout_s=0.3, stream_share=0.0,
                          responses_share=0.0, tool_failure_rate=0.0)  # fmt: skip
    with fake_openai(board) as oai, fake_anthropic(board) as ant:
        app = create_demo_app(Upstreams(oai.url + "/v1", ant.url), options, seed=1)
        with TestClient(app) as client:
            yield client, sdk, board
    watchkeeper.shutdown()


def model_is(model: str, behaviour: Behaviour) -> Rule:
    return lambda r: behaviour if r.model == model else None


def by_name(sdk: Sdk, trace_id: str) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in sdk.spans():
        if format(span.context.trace_id, "032x") == trace_id:
            out.setdefault(span.name, []).append(span)
    return out


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_rag_request_builds_the_whole_trace(demo: tuple[TestClient, Sdk, Switchboard]) -> None:
    client, sdk, _ = demo
    r = client.post("/rag", json={"question": "How do I export traces?", "model": "gpt-4.1"},
                    headers=HEADERS)  # fmt: skip
    assert r.status_code == 200 and not r.json()["cached"]
    spans = by_name(sdk, r.json()["trace_id"])
    assert {"POST /rag", "rag", "retrieve", "embeddings text-embedding-3-small",
            "guard rag.answer", "chat gpt-4.1"} <= set(spans)  # fmt: skip
    server = attrs(spans["POST /rag"][0])
    assert server[c.USER_ID] == "user-1" and server[c.SESSION_ID] == "sess-1"
    assert server[c.WK_FEATURE] == "rag" and server[c.WK_OUTCOME] == "success"
    retrieve = attrs(spans["retrieve"][0])
    assert "guide-export" in retrieve[c.WK_OUTPUT] and retrieve[c.USER_ID] == "user-1"
    llm = attrs(spans["chat gpt-4.1"][0])
    assert "guide-export" not in llm[c.GEN_AI_INPUT_MESSAGES]  # document text, not ids
    assert "Export traces as CSV" in llm[c.GEN_AI_INPUT_MESSAGES]

    again = client.post("/rag", json={"question": "How do I export traces?", "model": "gpt-4.1"})
    assert again.json()["cached"] and again.json()["answer"] == r.json()["answer"]
    metrics = client.get("/metrics").text
    assert 'watchkeeper_cache_requests_total{name="rag_answers",result="hit"} 1.0' in metrics
    assert 'watchkeeper_cache_requests_total{name="rag_answers",result="miss"} 1.0' in metrics
    assert "gen_ai_client_operation_duration_seconds_bucket" in metrics
    assert 'http_route="/rag"' in metrics


@pytest.mark.slow
def test_slow_model_falls_back_to_the_cheaper_one(
    demo: tuple[TestClient, Sdk, Switchboard], caplog: pytest.LogCaptureFixture
) -> None:
    client, sdk, board = demo
    board.rules.append(model_is("gpt-4.1", Behaviour(latency_s=3.0)))
    r = client.post("/rag", json={"question": "When are invoices sent?", "model": "gpt-4.1"})
    assert r.status_code == 200 and r.json()["answer"] != CANNED_ANSWER
    spans = by_name(sdk, r.json()["trace_id"])
    guard = attrs(spans["guard rag.answer"][0])
    assert guard[c.WK_OUTCOME] == "fallback"
    assert guard[c.WK_GUARD_FALLBACK].endswith("_cheaper_answer")
    assert all(attrs(s)[c.WK_OUTCOME] == "timeout" for s in spans["chat gpt-4.1"])
    assert attrs(spans["chat gpt-4o-mini"][0])[c.WK_OUTCOME] == "success"
    assert attrs(spans["POST /rag"][0])[c.WK_OUTCOME] == "fallback"
    assert "rag.answer answered by DemoService._cheaper_answer" in caplog.text
    assert "GuardTimeout" in caplog.text


@pytest.mark.slow
def test_stale_answer_then_canned_answer(demo: tuple[TestClient, Sdk, Switchboard]) -> None:
    client, _, board = demo
    question = "Where is customer data stored?"
    first = client.post("/rag", json={"question": question, "model": "gpt-4.1"}).json()
    board.rules += [model_is("claude-sonnet-4", Behaviour(status=500)),
                    model_is("gpt-4o-mini", Behaviour(status=500))]  # fmt: skip
    stale = client.post("/rag", json={"question": question, "model": "claude-sonnet-4"}).json()
    assert stale["answer"] == first["answer"]  # the last good answer to this question
    other = client.post("/rag", json={"question": "Who am I?", "model": "claude-sonnet-4"})
    assert other.status_code == 200 and other.json()["answer"] == CANNED_ANSWER


@pytest.mark.slow
def test_agent_runs_tools_between_llm_calls(demo: tuple[TestClient, Sdk, Switchboard]) -> None:
    client, sdk, _ = demo
    task = "What is the weather in Paris and what is 18 * 3.5?"
    r = client.post("/agent", json={"task": task}, headers=HEADERS)
    assert r.status_code == 200
    assert [t["tool"] for t in r.json()["tools"]] == ["weather", "calculator"]
    spans = by_name(sdk, r.json()["trace_id"])
    agent = attrs(spans["support-agent"][0])
    assert agent[c.WK_OPERATION] == "agent" and agent[c.GEN_AI_AGENT_NAME] == "support-agent"
    calc = attrs(spans["calculator"][0])
    assert calc[c.WK_OPERATION] == "tool" and calc[c.GEN_AI_TOOL_NAME] == "calculator"
    assert calc[c.WK_OUTPUT] == "63.0" and calc[c.GEN_AI_TOOL_CALL_ID].startswith("call_")
    order = sorted((s for group in spans.values() for s in group), key=lambda s: s.start_time or 0)
    kinds = [attrs(s)[c.WK_OPERATION] for s in order if attrs(s)[c.WK_OPERATION] in ("llm", "tool")]
    assert kinds == ["llm", "tool", "tool", "llm"]  # plan, tools, write-up
    planner = attrs(spans["chat claude-3-5-haiku"][0])
    assert planner[c.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    parts = json.loads(planner[c.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert [(p["name"], p["arguments"]) for p in parts if p["type"] == "tool_call"] == [
        ("weather", {"argument": "Paris"}), ("calculator", {"argument": "18 * 3.5"}),
    ]  # fmt: skip


@pytest.mark.slow
def test_slow_planner_falls_back_to_the_rule_based_plan(
    demo: tuple[TestClient, Sdk, Switchboard],
) -> None:
    client, sdk, board = demo
    board.rules.append(model_is("claude-3-5-haiku", Behaviour(latency_s=3.0)))
    r = client.post("/agent", json={"task": "Check the weather in Lisbon and Oslo."})
    assert [t["tool"] for t in r.json()["tools"]] == ["weather", "weather"]
    guard = attrs(by_name(sdk, r.json()["trace_id"])["guard agent.plan"][0])
    assert guard[c.WK_OUTCOME] == "fallback" and guard[c.WK_GUARD_FALLBACK] == "plan"


@pytest.mark.slow
def test_failing_tool_is_an_error_span_and_the_agent_carries_on(
    demo: tuple[TestClient, Sdk, Switchboard],
) -> None:
    client, sdk, _ = demo
    r = client.post("/agent", json={"task": "What is the weather in Atlantis? And 2 ** 3"})
    assert r.status_code == 200
    [tool] = r.json()["tools"]
    assert tool == {"tool": "calculator", "result": 8.0}
    bad = client.post("/agent", json={"task": "compute 1 / 0 please"})
    assert bad.status_code == 200 and "division by zero" in bad.json()["tools"][0]["error"]
    [calc] = by_name(sdk, bad.json()["trace_id"])["calculator"]
    assert attrs(calc)[c.WK_OUTCOME] == "error" and attrs(calc)[c.ERROR_TYPE] == "ToolError"
