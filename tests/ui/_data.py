"""A deterministic workload for the UI tests: requests with known outcomes, nested spans with
guard retries and fallbacks, chat payloads, users, sessions and scores."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from watchkeeper.model import PayloadRow, ScoreRow, SpanBatch, SpanRow

PROJECT = "default"
MS = 1_000_000
# Outcomes of the store-written requests, in order; counted by the tests.
OUTCOME_PLAN = (
    ["success"] * 40 + ["error"] * 8 + ["timeout"] * 5 + ["fallback"] * 4 + ["rejected"] * 3
)
MODELS = ("gpt-4o", "claude-sonnet-4")
FALLBACK_TRACE = "f" * 31 + "1"  # the one trace whose guard retried and then fell back
FALLBACK_ANSWER_SPAN = "a" * 15 + "4"  # its model call that answered (chat messages)


@dataclass
class Expected:
    """What the UI must show for this workload."""

    requests: Counter[str] = field(default_factory=Counter)
    services: Counter[str] = field(default_factory=Counter)
    spans_in_fallback_trace: int = 0
    written_ns: int = 0  # the "now" the store-written requests were placed before


def _tid(i: int) -> str:
    return f"{i + 1:032x}"


def _sid(i: int, k: int) -> str:
    return f"{i + 1:012x}{k:04x}"


def _chat(question: str) -> str:
    return json.dumps(
        [
            {"role": "system", "content": "You answer questions about our refund policy."},
            {"role": "user", "content": question},
        ]
    )


def _answer(text: str) -> str:
    return json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": text}],
                "finish_reason": "stop",
            }
        ]
    )


def _request(i: int, outcome: str, start_ns: int) -> tuple[list[SpanRow], list[PayloadRow]]:
    """One request: an HTTP root span, a retrieval, a guard and one model call inside it."""
    tid, model = _tid(i), MODELS[i % 2]
    root_ms = 400 + (i * 137) % 3000 + (9000 if outcome == "timeout" else 0)
    common = {"project": PROJECT, "trace_id": tid, "service": "chat-api", "environment": "prod"}
    who = {"user_id": f"user-{i % 5}", "session_id": f"sess-{i % 7}"}
    root = SpanRow(
        span_id=_sid(i, 1),
        parent_span_id="",
        name="POST /chat",
        start_ns=start_ns,
        duration_ns=root_ms * MS,
        span_kind="server",
        operation="http",
        outcome=outcome,
        status_code="error" if outcome in ("error", "timeout") else "ok",
        error_type={"error": "RateLimitError", "timeout": "TimeoutError"}.get(outcome),
        http_method="POST",
        http_route="/chat",
        http_status_code=200,
        **common,
        **who,
    )
    llm = SpanRow(
        span_id=_sid(i, 3),
        parent_span_id=_sid(i, 2),
        name=f"chat {model}",
        start_ns=start_ns + 60 * MS,
        duration_ns=(root_ms - 100) * MS,
        span_kind="client",
        operation="llm",
        outcome="success" if outcome != "error" else "error",
        provider="openai" if model == "gpt-4o" else "anthropic",
        request_model=model,
        response_model=model,
        input_tokens=1000 + i,
        output_tokens=200,
        cache_read_tokens=400,
        cost_usd=0.001 * (1 + i % 3),
        cost_source="estimated",
        feature="support",
        **common,
        **who,
    )
    spans = [
        root,
        SpanRow(
            span_id=_sid(i, 4),
            parent_span_id=_sid(i, 1),
            name="retrieve docs",
            start_ns=start_ns + 5 * MS,
            duration_ns=40 * MS,
            operation="retrieval",
            **common,
        ),
        SpanRow(
            span_id=_sid(i, 2),
            parent_span_id=_sid(i, 1),
            name="guard chat",
            start_ns=start_ns + 50 * MS,
            duration_ns=(root_ms - 80) * MS,
            operation="guard",
            outcome=outcome if outcome != "rejected" else "success",
            **common,
        ),
        llm,
    ]
    payloads = [
        PayloadRow(
            project=PROJECT,
            trace_id=tid,
            span_id=llm.span_id,
            start_ns=llm.start_ns,
            input=_chat(f"Can I get a refund for order {i}?"),
            output=_answer(f"Yes: order {i} is within the 30-day window."),
            attributes=json.dumps({"gen_ai.request.model": model, "watchkeeper.guard.attempt": 1}),
        ),
    ]
    return spans, payloads


def _fallback_trace(start_ns: int) -> tuple[list[SpanRow], list[PayloadRow]]:
    """A request whose first model call timed out and whose fallback model answered."""
    common = {
        "project": PROJECT,
        "trace_id": FALLBACK_TRACE,
        "service": "chat-api",
        "environment": "prod",
        "user_id": "user-vip",
        "session_id": "sess-vip",
    }
    sid = ["a" * 15 + str(k) for k in range(6)]
    spans = [
        SpanRow(
            span_id=sid[0],
            parent_span_id="",
            name="POST /chat",
            start_ns=start_ns,
            duration_ns=9400 * MS,
            span_kind="server",
            operation="http",
            outcome="fallback",
            http_method="POST",
            http_route="/chat",
            http_status_code=200,
            **common,
        ),
        SpanRow(
            span_id=sid[1],
            parent_span_id=sid[0],
            name="retrieve docs",
            start_ns=start_ns + 5 * MS,
            duration_ns=300 * MS,
            operation="retrieval",
            **common,
        ),
        SpanRow(
            span_id=sid[2],
            parent_span_id=sid[0],
            name="guard answer",
            start_ns=start_ns + 320 * MS,
            duration_ns=9000 * MS,
            operation="guard",
            outcome="fallback",
            **common,
        ),
        SpanRow(
            span_id=sid[3],
            parent_span_id=sid[2],
            name="chat gpt-4o",
            start_ns=start_ns + 330 * MS,
            duration_ns=8000 * MS,
            operation="llm",
            outcome="timeout",
            status_code="error",
            error_type="TimeoutError",
            request_model="gpt-4o",
            input_tokens=1500,
            cost_source="missing",
            **common,
        ),
        SpanRow(
            span_id=sid[4],
            parent_span_id=sid[2],
            name="chat claude-haiku",
            start_ns=start_ns + 8340 * MS,
            duration_ns=900 * MS,
            operation="llm",
            request_model="claude-haiku",
            response_model="claude-haiku",
            input_tokens=1500,
            output_tokens=90,
            cost_usd=0.0004,
            cost_source="estimated",
            **common,
        ),
        SpanRow(
            span_id=sid[5],
            parent_span_id=sid[4],
            name="tool lookup_policy",
            start_ns=start_ns + 8400 * MS,
            duration_ns=120 * MS,
            operation="tool",
            tool_name="lookup_policy",
            **common,
        ),
    ]
    attempt = {"watchkeeper.guard.name": "answer"}
    payloads = [
        PayloadRow(
            project=PROJECT,
            trace_id=FALLBACK_TRACE,
            span_id=sid[2],
            start_ns=start_ns,
            attributes=json.dumps({**attempt, "watchkeeper.guard.fallback": "claude-haiku"}),
        ),
        PayloadRow(
            project=PROJECT,
            trace_id=FALLBACK_TRACE,
            span_id=sid[3],
            start_ns=start_ns,
            input=_chat("Where is my refund?"),
            status_message="deadline of 8 s exceeded",
            attributes=json.dumps({**attempt, "watchkeeper.guard.attempt": 1}),
            events=json.dumps(
                [
                    {
                        "name": "exception",
                        "attributes": {
                            "exception.type": "TimeoutError",
                            "exception.message": "8 s deadline",
                        },
                    }
                ]
            ),
        ),
        PayloadRow(
            project=PROJECT,
            trace_id=FALLBACK_TRACE,
            span_id=sid[4],
            start_ns=start_ns,
            input=_chat("Where is my refund?"),
            output=_answer("Your refund was issued on Monday."),
            attributes=json.dumps({**attempt, "watchkeeper.guard.attempt": 2}),
        ),
    ]
    return spans, payloads


def build(now_ns: int) -> tuple[SpanBatch, list[ScoreRow], Expected]:
    """The store-written part of the workload, spread over the 30 minutes before `now_ns`."""
    batch, exp = SpanBatch(), Expected(written_ns=now_ns)
    for i, outcome in enumerate(OUTCOME_PLAN):
        spans, payloads = _request(i, outcome, now_ns - (30 * 60 - i * 25) * 1_000_000_000)
        batch.spans += spans
        batch.payloads += payloads
        exp.requests[outcome] += 1
        exp.services["chat-api"] += 1
    spans, payloads = _fallback_trace(now_ns - 5 * 60 * 1_000_000_000)
    batch.spans += spans
    batch.payloads += payloads
    exp.requests["fallback"] += 1
    exp.services["chat-api"] += 1
    exp.spans_in_fallback_trace = len(spans)
    scores = [
        ScoreRow(
            project=PROJECT,
            score_id=f"s{i}",
            trace_id=_tid(i),
            name="relevance",
            created_ns=now_ns - (20 - i) * 60 * 1_000_000_000,
            value=0.2 + 0.1 * (i % 8),
            source="eval",
        )
        for i in range(12)
    ]
    scores.append(
        ScoreRow(
            project=PROJECT,
            score_id="fb1",
            trace_id=FALLBACK_TRACE,
            name="user_feedback",
            created_ns=now_ns - 60_000_000_000,
            value=0.0,
            comment="too slow",
            source="feedback",
        )
    )
    return batch, scores, exp
