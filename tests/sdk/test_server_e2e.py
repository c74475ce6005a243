"""The SDK against the real server process: what it sends is stored as the SDK meant it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import watchkeeper
from tests.eventually import eventually
from tests.server._process import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data").start()
    try:
        yield proc
    finally:
        proc.stop()


def wait_for_trace(url: str, trace_id: str, spans: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll the trace API until the trace has `spans` spans."""
    response = eventually(
        lambda: httpx.get(f"{url}/api/v1/traces/{trace_id}", timeout=5),
        timeout_s,
        0.2,
        until=lambda r: r.status_code == 200 and len(r.json()["spans"]) >= spans,
    )
    complete = response.status_code == 200 and len(response.json()["spans"]) >= spans
    assert complete, f"trace {trace_id} incomplete: {response.text[:500]}"
    return dict(response.json())


def test_outcomes_models_and_usage_arrive_as_sent(server: ServerProcess) -> None:
    watchkeeper.init("e2e-svc", endpoint=server.url, json_logs=False, raise_errors=True)
    try:

        @watchkeeper.guard("llm", deadline=0.2, breaker=False, fallbacks=["cached answer"])
        async def slow_llm() -> str:
            await asyncio.sleep(5)
            return "fresh"

        async def request() -> str:
            user = watchkeeper.context(user_id="u-42", session_id="s-1")
            async with user, watchkeeper.observe("answer", kind="agent") as root:
                with watchkeeper.observe("chat", kind="llm") as llm:
                    llm.set_model("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai")
                    llm.set_usage(input_tokens=120, output_tokens=30, cache_read_tokens=20)
                assert await slow_llm() == "cached answer"
                return root.trace_id

        trace_id = asyncio.run(request())
        assert watchkeeper.flush(10.0)
    finally:
        watchkeeper.shutdown()
    # answer, chat, guard llm (its one attempt: a timeout is not retried)
    trace = wait_for_trace(server.url, trace_id, spans=3)
    by_name = {s["name"]: s for s in trace["spans"]}
    root, chat = by_name["answer"], by_name["chat"]
    assert root["outcome"] == "fallback"
    assert root["operation"] == "agent"
    assert root["user_id"] == "u-42" and root["session_id"] == "s-1"
    assert root["service"] == "e2e-svc"
    assert chat["operation"] == "llm"
    assert chat["provider"] == "openai" and chat["request_model"] == "gpt-4o-mini"
    assert (chat["input_tokens"], chat["output_tokens"], chat["cache_read_tokens"]) == (120, 30, 20)
    assert by_name["guard llm"]["operation"] == "guard"
    assert by_name["guard llm"]["outcome"] == "fallback"
    assert "guard llm attempt" not in by_name


def test_request_spans_carry_route_status_and_outcome(server: ServerProcess) -> None:
    from fastapi import FastAPI

    from ._servers import serve_asgi

    watchkeeper.init("e2e-web", endpoint=server.url, json_logs=False, raise_errors=True)
    try:
        app = FastAPI()

        @app.get("/ask/{topic}")
        async def ask(topic: str) -> dict[str, str]:
            if topic == "slow":
                await asyncio.sleep(5)
            return {"topic": topic}

        app.add_middleware(watchkeeper.WatchkeeperMiddleware, deadline=0.3)  # type: ignore[arg-type]
        with serve_asgi(app) as url:
            fast = httpx.get(f"{url}/ask/fast")
            slow = httpx.get(f"{url}/ask/slow", timeout=10)
        assert watchkeeper.flush(10.0)
    finally:
        watchkeeper.shutdown()
    assert (fast.status_code, slow.status_code) == (200, 504)
    fast_span = wait_for_trace(server.url, fast.headers["x-trace-id"], spans=1)["spans"][0]
    slow_span = wait_for_trace(server.url, slow.headers["x-trace-id"], spans=1)["spans"][0]
    assert fast_span["http_route"] == "/ask/{topic}"
    assert (fast_span["http_status_code"], fast_span["outcome"]) == (200, "success")
    assert (slow_span["http_status_code"], slow_span["outcome"]) == (504, "timeout")
    assert slow_span["span_kind"] == "server" and slow_span["operation"] == "http"
