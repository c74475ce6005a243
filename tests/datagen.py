"""Deterministic, realistic span data for store, query and API tests.

Every trace is an HTTP request (the root span) that calls one or two models and, every third
trace, a tool. Outcomes, users, sessions, models and payload texts follow fixed rules of the
trace index, so a test can compute the exact expected answer from the rows themselves.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from watchkeeper.model import PayloadRow, ScoreRow, SpanBatch, SpanRow

BASE_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z, a whole minute
MINUTE_NS = 60 * 1_000_000_000
MODELS = ("gpt-4o", "claude-sonnet-4", "gpt-4o-mini")
PRICES = {"gpt-4o": (2.5, 10.0), "claude-sonnet-4": (3.0, 15.0), "gpt-4o-mini": (0.15, 0.6)}
SERVICES = ("chat-api", "search-api")
NEEDLE = "Zebra"  # appears in the prompt of every 25th trace


@dataclass(slots=True)
class Dataset:
    """Generated rows of one project."""

    spans: list[SpanRow] = field(default_factory=list)
    payloads: list[PayloadRow] = field(default_factory=list)

    def batch(self) -> SpanBatch:
        """All rows as one batch."""
        return SpanBatch(list(self.spans), list(self.payloads))

    def batches(self, size: int) -> Iterable[SpanBatch]:
        """The rows in batches of about `size` spans (payloads follow their spans)."""
        by_key = {(p.trace_id, p.span_id): p for p in self.payloads}
        for i in range(0, len(self.spans), size):
            spans = self.spans[i : i + size]
            pays = [
                by_key[(s.trace_id, s.span_id)] for s in spans if (s.trace_id, s.span_id) in by_key
            ]
            yield SpanBatch(spans, pays)


def trace_id(project: str, i: int) -> str:
    """The trace id of trace `i` of a project (32 hex digits, distinct per project)."""
    tag = sum(project.encode()) % 0xFFFF
    return f"{tag:04x}{i:028x}"


def _outcome(i: int) -> str:
    if i % 10 == 3:
        return "error"
    if i % 17 == 5:
        return "timeout"
    if i % 23 == 7:
        return "fallback"
    return "success"


def _llm(project: str, i: int, j: int, start: int, rng: random.Random, outcome: str) -> SpanRow:
    model = "mystery-model" if i % 13 == 0 and j == 0 else MODELS[(i + j) % len(MODELS)]
    tin, tout = 200 + (i * 7) % 300, 50 + (i * 11) % 150
    price = PRICES.get(model)
    cost = None if price is None else (tin * price[0] + tout * price[1]) / 1e6
    return SpanRow(
        project=project,
        trace_id=trace_id(project, i),
        span_id=f"{i:012x}{j + 1:04x}",
        parent_span_id=f"{i:012x}0000",
        name=f"chat {model}",
        start_ns=start + (j + 1) * 1_000_000,
        duration_ns=rng.randint(200, 4000) * 1_000_000,
        service=SERVICES[i % 2],
        environment="prod" if i % 4 else "staging",
        span_kind="client",
        operation="llm",
        status_code="error" if outcome in ("error", "timeout") else "ok",
        outcome=outcome,
        error_type={"error": "RateLimitError", "timeout": "TimeoutError"}.get(outcome),
        provider="anthropic" if model.startswith("claude") else "openai",
        request_model=model,
        response_model=None if i % 5 == 0 else model,
        input_tokens=tin,
        output_tokens=tout,
        cache_read_tokens=(i % 3) * 10,
        cost_usd=cost,
        cost_source="missing" if cost is None else "estimated",
        user_id=f"user-{i % 7}",
        session_id=f"session-{i // 5}",
        finish_reason="stop",
        feature="answer" if i % 2 else "summarize",
    )


def _trace(project: str, i: int, start: int, rng: random.Random) -> list[SpanRow]:
    """Every span of a trace has its user, session and feature, as the store fills them."""
    outcome = _outcome(i)
    feature = "answer" if i % 2 else "summarize"
    children = [
        _llm(project, i, j, start, rng, outcome if j == 0 else "success") for j in range(1 + i % 2)
    ]
    if i % 3 == 0:
        children.append(
            SpanRow(
                project, trace_id(project, i), f"{i:012x}{9:04x}", f"{i:012x}0000", "tool search",
                start + 5_000_000, rng.randint(5, 80) * 1_000_000, service=SERVICES[i % 2],
                environment="prod" if i % 4 else "staging", operation="tool",
                tool_name="web_search", agent_name="planner", user_id=f"user-{i % 7}",
                session_id=f"session-{i // 5}", feature=feature,
            )
        )  # fmt: skip
    root_ms = max(s.duration_ns for s in children) // 1_000_000 + rng.randint(5, 50)
    root = SpanRow(
        project, trace_id(project, i), f"{i:012x}0000", "", f"POST /{SERVICES[i % 2]}",
        start, root_ms * 1_000_000, service=SERVICES[i % 2],
        environment="prod" if i % 4 else "staging", span_kind="server", operation="http",
        status_code="error" if outcome in ("error", "timeout") else "unset", outcome=outcome,
        http_method="POST", http_route="/v1/chat" if i % 2 else "/v1/search",
        http_status_code={"error": 500, "timeout": 504}.get(outcome, 200),
        user_id=f"user-{i % 7}", session_id=f"session-{i // 5}", feature=feature,
    )  # fmt: skip
    return [root, *children]


def _payload(span: SpanRow, i: int) -> PayloadRow:
    word = f" about the {NEEDLE}" if i % 25 == 0 else ""
    return PayloadRow(
        span.project, span.trace_id, span.span_id, span.start_ns,
        input=f"Question {i}: tell me something{word} (span {span.span_id})",
        output=f"Answer number {i}",
        attributes=f'{{"gen_ai.request.model": "{span.request_model}", "i": {i}}}',
        resource='{"service.name": "' + span.service + '"}',
    )  # fmt: skip


def generate(
    project: str = "demo",
    traces: int = 200,
    *,
    seed: int = 7,
    start_ns: int = BASE_NS,
    spacing_ns: int = MINUTE_NS,
) -> Dataset:
    """`traces` traces of `project`, one every `spacing_ns` from `start_ns`."""
    rng = random.Random(f"{project}:{seed}")
    data = Dataset()
    for i in range(traces):
        spans = _trace(project, i, start_ns + i * spacing_ns, rng)
        data.spans += spans
        data.payloads += [_payload(s, i) for s in spans if s.operation == "llm"]
    return data


def scores_for(project: str, trace_ids: Sequence[str], created_ns: int = BASE_NS) -> list[ScoreRow]:
    """Feedback on each given trace: value 1.0 for even positions, 0.0 for odd; one label."""
    out = [
        ScoreRow(project, f"{project}-fb-{k}", t, "user_feedback", created_ns + k * MINUTE_NS,
                 value=float(k % 2 == 0), source="feedback", user_id=f"user-{k % 7}")
        for k, t in enumerate(trace_ids)
    ]  # fmt: skip
    out.append(
        ScoreRow(project, f"{project}-judge-0", trace_ids[0], "relevance", created_ns, label="pass")
    )
    return out


def quantile_cont(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (what DuckDB's quantile_cont computes)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
