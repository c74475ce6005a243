"""The demo end to end: its spans and feedback reach a real `watchkeeper serve` process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.eventually import eventually
from tests.server._process import ServerProcess

import watchkeeper
from watchkeeper.demo import DemoOptions, run_demo
from watchkeeper.demo._run import SERVICE_NAME
from watchkeeper.demo.fake_providers import RandomProfile

# A seeded, unhealthy provider: many failures and a slow tail past the (shrunk) deadline.
PROFILE = RandomProfile(
    seed=11, rate_429=0.1, rate_500=0.08, tail_rate=0.3, time_scale=0.1, cache_rate=0.4
)
OPTIONS = DemoOptions(
    deadline_s=0.5, fallback_timeout_s=0.3, request_deadline_s=5.0, tool_failure_rate=0.3
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("wk") / "data").start()
    yield process
    process.stop()


def groups(server: ServerProcess, by: str, **params: Any) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{server.url}/api/v1/breakdown", params={"by": by, "range": "1h", **params})
    r.raise_for_status()
    return {g["key"]: g for g in r.json()["groups"]}


def wait_for(check: Any, timeout_s: float = 30.0) -> Any:
    """Poll `check()` until it returns something truthy (ingest is asynchronous)."""
    return eventually(check, timeout_s, 0.5)


@pytest.mark.slow
def test_demo_sends_every_kind_of_span_with_timeouts_and_fallbacks(
    server: ServerProcess,
) -> None:
    try:
        result = run_demo(
            server.url, rate=15, duration=6, port=0, profile=PROFILE, options=OPTIONS,
            seed=5, json_logs=False,
        )  # fmt: skip
    finally:
        watchkeeper.shutdown()
    load = result.load
    assert result.flushed
    # Fallbacks answer most requests; a failed retrieval (500) or a slow machine (504) may not.
    assert load.sent >= 40 and load.statuses["200"] >= load.sent / 2, load
    assert set(load.paths) == {"/rag", "/agent"}

    wanted = {"http", "llm", "embedding", "retrieval", "tool", "agent", "workflow"}
    ops = wait_for(lambda: (g := groups(server, "operation")) and wanted <= set(g) and g)
    assert wanted <= set(ops), sorted(ops)
    outcomes = groups(server, "outcome")
    assert {"success", "error", "timeout", "fallback"} <= set(outcomes), sorted(outcomes)
    models = groups(server, "model", scope="llm")
    assert {"gpt-4o-mini", "gpt-4.1", "claude-sonnet-4"} <= {m.split("-20")[0] for m in models}
    assert groups(server, "provider", scope="llm").keys() >= {"openai", "anthropic"}
    assert len(groups(server, "user")) > 5 and len(groups(server, "session")) > 5
    tools = groups(server, "tool")
    assert {"weather", "calculator", "search"} <= set(tools)

    summary = httpx.get(f"{server.url}/api/v1/summary", params={"range": "1h", "scope": "llm"})
    s = summary.json()
    assert s["cache_read_tokens"] > 0 and s["cost_usd"] > 0

    scores = wait_for(lambda: httpx.get(f"{server.url}/api/v1/scores/summary",
                                        params={"range": "1h"}).json()["items"])  # fmt: skip
    # User feedback, and the evaluator's scores of some RAG answers.
    assert {s["name"] for s in scores} == {"user_feedback", "relevance", "hallucination"}
    assert result.scores_posted > 0
    _the_service_logs_arrived_with_their_trace_ids(server)


def _the_service_logs_arrived_with_their_trace_ids(server: ServerProcess) -> None:
    """The demo's `logging` records reach the server through the SDK (issue 12)."""

    def traced() -> list[dict[str, Any]]:
        params = {"range": "1h", "service": SERVICE_NAME, "limit": 1000}
        records = httpx.get(f"{server.url}/api/v1/logs", params=params).json()["records"]
        return [r for r in records if r["trace_id"]]

    records = wait_for(lambda: (found := traced()) and len(found) >= 10 and found)
    bodies = [r["body"] for r in records]
    assert any(b.startswith("rag answered") for b in bodies), bodies[:5]
    assert any(b.startswith("agent ran") for b in bodies), bodies[:5]
    for failed_tool in (r for r in records if r["body"].startswith("tool weather failed")):
        assert failed_tool["severity"] == "warn"  # the tool fails at random: when it did,
        assert failed_tool["attributes"]["exception.type"] == "watchkeeper.demo._tools.ToolError"
    # A log line leads to its trace: once the trace's spans are stored too (they travel
    # apart from the logs, and may arrive after them).
    record = records[-1]  # the oldest line of the page

    def its_trace() -> httpx.Response | None:
        r = httpx.get(f"{server.url}/api/v1/traces/{record['trace_id']}")
        return r if r.status_code == 200 else None

    trace = wait_for(its_trace)
    assert trace is not None, f"no trace {record['trace_id']} for {record['body']!r}"
    span_ids = {s["span_id"] for s in trace.json()["spans"]}
    assert record["span_id"] in span_ids


@pytest.mark.slow
def test_run_demo_stops_on_the_event(server: ServerProcess) -> None:
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    timer.start()
    try:
        profile = RandomProfile(seed=1, time_scale=0.05)
        result = run_demo(
            server.url, rate=5, port=0, stop_event=stop, profile=profile, json_logs=False
        )
    finally:
        timer.cancel()
        watchkeeper.shutdown()
    assert stop.is_set() and 3 <= result.load.sent <= 30


def test_main_rejects_a_bad_rate(capsys: pytest.CaptureFixture[str]) -> None:
    from watchkeeper.demo import main

    assert main(["--rate", "0"]) == 2
    assert "--rate" in capsys.readouterr().err


def test_cli_help_lists_the_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from watchkeeper.demo import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for option in ("--server-url", "--api-key", "--rate", "--duration", "--port"):
        assert option in out
