"""`observe`: spans for functions of every shape and for blocks, with GenAI attributes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import watchkeeper
from watchkeeper.model import conventions as c

from .conftest import Sdk


@pytest.mark.parametrize(
    ("kind", "operation", "span_kind"),
    [
        ("llm", "chat", SpanKind.CLIENT),
        ("embedding", "embeddings", SpanKind.CLIENT),
        ("retrieval", "retrieval", SpanKind.INTERNAL),
        ("tool", "execute_tool", SpanKind.INTERNAL),
        ("agent", "invoke_agent", SpanKind.INTERNAL),
        ("workflow", "invoke_workflow", SpanKind.INTERNAL),
    ],
)
def test_kind_sets_operation_attributes(
    sdk: Sdk, kind: str, operation: str, span_kind: SpanKind
) -> None:
    with watchkeeper.observe("op", kind=kind):
        pass
    span = sdk.span("op")
    assert span.attributes is not None
    assert span.attributes[c.WK_OPERATION] == kind
    assert span.attributes[c.GEN_AI_OPERATION_NAME] == operation
    assert span.attributes[c.WK_OUTCOME] == "success"
    assert span.kind == span_kind


def test_tool_and_agent_names_come_from_the_span_name(sdk: Sdk) -> None:
    with watchkeeper.observe("planner", kind="agent"), watchkeeper.observe("search", kind="tool"):
        pass
    assert sdk.span("planner").attributes[c.GEN_AI_AGENT_NAME] == "planner"  # type: ignore[index]
    assert sdk.span("search").attributes[c.GEN_AI_TOOL_NAME] == "search"  # type: ignore[index]


def test_decorated_functions_of_every_shape_nest_under_the_caller(sdk: Sdk) -> None:
    @watchkeeper.observe("add", kind="tool")
    def add(a: int, b: int) -> int:
        return a + b

    @watchkeeper.observe("double")
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return add(x, x)

    @watchkeeper.observe("numbers")
    def numbers(n: int) -> Iterator[int]:
        for i in range(n):
            yield add(i, 0)

    @watchkeeper.observe("anumbers")
    async def anumbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield await double(i)

    async def run() -> list[int]:
        return [x async for x in anumbers(2)]

    with watchkeeper.observe("root") as root:
        assert list(numbers(2)) == [0, 1]
        assert asyncio.run(run()) == [0, 2]
    by_id = {s.context.span_id: s for s in sdk.spans()}
    parents = sorted(
        (s.name, by_id[s.parent.span_id].name) for s in sdk.spans() if s.parent is not None
    )
    assert parents == [
        ("add", "double"),
        ("add", "double"),
        ("add", "numbers"),
        ("add", "numbers"),
        ("anumbers", "root"),
        ("double", "anumbers"),
        ("double", "anumbers"),
        ("numbers", "root"),
    ]
    assert {s.context.trace_id for s in sdk.spans()} == {int(root.trace_id, 16)}


def test_a_generator_span_is_not_current_while_the_caller_runs(sdk: Sdk) -> None:
    @watchkeeper.observe("gen")
    def gen() -> Iterator[str]:
        yield trace.get_current_span().get_span_context().span_id.__format__("016x")
        yield "done"

    with watchkeeper.observe("caller") as caller:
        it = gen()
        inside = next(it)
        assert trace.get_current_span().get_span_context().span_id == int(caller.span_id, 16)
        assert list(it) == ["done"]
    assert inside == format(sdk.span("gen").context.span_id, "016x")


def test_a_generator_closed_early_ends_its_span(sdk: Sdk) -> None:
    @watchkeeper.observe("gen")
    def gen() -> Iterator[int]:
        yield from range(10)

    it = gen()
    assert next(it) == 0
    it.close()
    assert sdk.span("gen").attributes[c.WK_OUTCOME] == "success"  # type: ignore[index]


def test_values_sent_and_thrown_into_a_generator_reach_it(sdk: Sdk) -> None:
    @watchkeeper.observe("echo")
    def echo() -> Iterator[Any]:
        received: Any = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "caught"

    it = echo()
    next(it)
    assert it.send(5) == 5
    assert it.throw(KeyError("k")) == "caught"
    it.close()
    assert sdk.names() == ["echo"]


@pytest.mark.parametrize(
    ("exc", "outcome", "error_type"),
    [
        (ValueError("bad"), "error", "ValueError"),
        (TimeoutError("slow"), "timeout", "TimeoutError"),
        (ConnectionError("down"), "error", "ConnectionError"),
        (type("ReadTimeout", (Exception,), {})(), "timeout", "ReadTimeout"),
        (KeyError("k"), "error", "KeyError"),
    ],
)
def test_exceptions_pass_through_and_set_the_outcome(
    sdk: Sdk, exc: Exception, outcome: str, error_type: str
) -> None:
    @watchkeeper.observe("f")
    def f() -> None:
        raise exc

    with pytest.raises(type(exc)) as raised:
        f()
    assert raised.value is exc
    span = sdk.span("f")
    assert span.attributes[c.WK_OUTCOME] == outcome  # type: ignore[index]
    assert span.attributes[c.ERROR_TYPE] == error_type  # type: ignore[index]
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


async def test_async_exceptions_pass_through(sdk: Sdk) -> None:
    @watchkeeper.observe("f")
    async def f() -> None:
        raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        await f()
    assert sdk.span("f").attributes[c.WK_OUTCOME] == "error"  # type: ignore[index]


def test_span_helpers_set_genai_attributes(sdk: Sdk) -> None:
    with watchkeeper.observe("chat gpt-4o", kind="llm") as span:
        span.set_model("gpt-4o", "gpt-4o-2024-08-06", "openai")
        span.set_usage(100, 20, cache_read_tokens=30, cache_write_tokens=5, reasoning_tokens=7)
        span.set({"gen_ai.request.temperature": 0.2}, custom="x", skipped=None)
        span.add_event("first_token", ttft_ms=12.5)
        span.set_input("not captured: capture is off")
    attrs = dict(sdk.span("chat gpt-4o").attributes or {})
    assert attrs[c.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[c.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs[c.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[c.GEN_AI_USAGE_INPUT_TOKENS] == 100
    assert attrs[c.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    assert attrs[c.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 30
    assert attrs[c.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 5
    assert attrs[c.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 7
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["custom"] == "x"
    assert "skipped" not in attrs
    assert c.WK_INPUT not in attrs
    assert span.trace_id == format(sdk.span("chat gpt-4o").context.trace_id, "032x")


def test_llm_spans_record_genai_metrics(sdk: Sdk) -> None:
    for _ in range(3):
        with watchkeeper.observe("chat", kind="llm") as span:
            span.set_model("gpt-4o", provider="openai")
            span.set_usage(input_tokens=100, output_tokens=10)
    with pytest.raises(RuntimeError), watchkeeper.observe("chat", kind="llm") as span:
        span.set_model("gpt-4o", provider="openai")
        raise RuntimeError("boom")
    base = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai"}
    model = {**base, "gen_ai_request_model": "gpt-4o"}
    ok = sdk.metric("gen_ai_client_operation_duration_seconds_count", {**model, "error_type": ""})
    failed = sdk.metric(
        "gen_ai_client_operation_duration_seconds_count", {**model, "error_type": "RuntimeError"}
    )
    assert (ok, failed) == (3.0, 1.0)
    tokens = {**model, "gen_ai_token_type": "input"}
    assert sdk.metric("gen_ai_client_token_usage_sum", tokens) == 300.0
    assert sdk.metric("gen_ai_client_token_usage_bucket", {**tokens, "le": "64.0"}) == 0.0
    assert sdk.metric("gen_ai_client_token_usage_bucket", {**tokens, "le": "256.0"}) == 3.0


def test_explicit_outcome_and_record_error(sdk: Sdk) -> None:
    with watchkeeper.observe("a") as a:
        a.set_outcome("fallback")
    with watchkeeper.observe("b") as b:
        b.record_error(ConnectionError("down"))
    assert sdk.span("a").attributes[c.WK_OUTCOME] == "fallback"  # type: ignore[index]
    assert sdk.span("b").attributes[c.WK_OUTCOME] == "error"  # type: ignore[index]
    assert sdk.span("b").attributes[c.ERROR_TYPE] == "ConnectionError"  # type: ignore[index]


def test_an_invalid_outcome_is_an_sdk_error_under_tests(sdk: Sdk) -> None:
    with pytest.raises(ValueError, match="outcome"), watchkeeper.observe("a") as a:
        a.set_outcome("maybe")


def test_content_is_captured_redacted_and_as_json(sdk_capture: Sdk) -> None:
    @watchkeeper.observe("answer", kind="llm")
    def answer(question: str, *, top_k: int = 3) -> dict[str, Any]:
        return {"text": "write to alice@example.com", "k": top_k}

    answer("my card is 4111 1111 1111 1111", top_k=2)
    with watchkeeper.observe("manual", capture_output=False) as span:
        span.set_input("call +44 20 7946 0958")
        span.set_output("not recorded: capture_output=False")
    attrs = sdk_capture.span("answer").attributes or {}
    assert attrs[c.WK_INPUT] == '{"question": "my card is [REDACTED:card]", "top_k": 2}'
    assert attrs[c.WK_OUTPUT] == '{"text": "write to [REDACTED:email]", "k": 2}'
    manual = sdk_capture.span("manual").attributes or {}
    assert manual[c.WK_INPUT] == "call [REDACTED:phone]"
    assert c.WK_OUTPUT not in manual


def test_capture_without_redaction_and_with_extra_patterns() -> None:
    from .conftest import start_sdk

    sdk = start_sdk(capture_content=True, redact=False)
    with watchkeeper.observe("raw") as span:
        span.set_input("bob@example.com")
    assert sdk.span("raw").attributes[c.WK_INPUT] == "bob@example.com"  # type: ignore[index]
    sdk = start_sdk(capture_content=True, redaction_patterns=[r"ORDER-\d+"])
    with watchkeeper.observe("custom") as span:
        span.set_input("ORDER-12345 for bob@example.com")
    text = sdk.span("custom").attributes[c.WK_INPUT]  # type: ignore[index]
    assert text == "[REDACTED:custom] for [REDACTED:email]"
    watchkeeper.shutdown()


def test_root_spans_carry_guard_outcomes_reported_beneath_them(sdk: Sdk) -> None:
    from watchkeeper.sdk._context import report_to_request

    with watchkeeper.observe("request"), watchkeeper.observe("inner"):
        report_to_request("fallback")
    with watchkeeper.observe("request2"):
        report_to_request("timeout")
        report_to_request("fallback")
    assert sdk.span("request").attributes[c.WK_OUTCOME] == "fallback"  # type: ignore[index]
    assert sdk.span("inner").attributes[c.WK_OUTCOME] == "success"  # type: ignore[index]
    assert sdk.span("request2").attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]


async def test_one_observe_object_shared_by_concurrent_tasks(sdk: Sdk) -> None:
    shared = watchkeeper.observe("shared")

    async def task(i: int, delay: float) -> str:
        async with shared as span:
            span.set(task=i)
            await asyncio.sleep(delay)
            if i == 0:
                raise KeyError("first task fails")
            return span.span_id

    results = await asyncio.gather(task(0, 0.0), task(1, 0.05), return_exceptions=True)
    assert isinstance(results[0], KeyError)
    spans = {s.attributes["task"]: s for s in sdk.spans()}  # type: ignore[index]
    assert spans[0].attributes[c.WK_OUTCOME] == "error"  # type: ignore[index]
    assert spans[1].attributes[c.WK_OUTCOME] == "success"  # type: ignore[index]
    assert format(spans[1].context.span_id, "016x") == results[1]
