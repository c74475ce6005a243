"""Rows the ingest path produces and the store keeps.

`SpanRow` is the narrow analytic row (every dashboard and alert reads only these columns);
`PayloadRow` carries the bulky text (prompts, completions, raw attributes, events) that is
stored apart, compressed, and read only when a trace is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Values of `SpanRow.operation`: what kind of work a span did.
OPERATIONS: tuple[str, ...] = (
    "http",  # an HTTP server or client span
    "llm",  # chat / text completion / generate_content
    "embedding",
    "retrieval",
    "tool",
    "agent",
    "workflow",
    "guard",  # the SDK guard around a call (attempt spans are its children when it retried)
    "other",
)

#: Values of `SpanRow.cost_source`.
COST_SOURCES: tuple[str, ...] = ("reported", "estimated", "missing", "none")
#: Times are nanoseconds in int64 (the store's columns): 2262-04-11 is the last instant.
MAX_TIME_NS = (1 << 63) - 1


@dataclass(slots=True)
class SpanRow:
    """One normalized span: the narrow, typed columns of the span table.

    Times are integers in nanoseconds since the Unix epoch. Optional columns are `None`
    when the span did not say; `cost_source` is "none" for spans that use no model.
    """

    project: str
    trace_id: str  # 32 lowercase hex characters
    span_id: str  # 16 lowercase hex characters
    parent_span_id: str  # "" for a root span
    name: str
    start_ns: int
    duration_ns: int
    service: str = "unknown_service"
    environment: str = ""
    span_kind: str = "internal"  # internal, server, client, producer, consumer
    operation: str = "other"  # one of OPERATIONS
    status_code: str = "unset"  # unset, ok, error
    outcome: str = "success"  # one of OUTCOMES
    error_type: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    cost_source: str = "none"  # one of COST_SOURCES
    user_id: str | None = None
    session_id: str | None = None
    http_method: str | None = None
    http_route: str | None = None
    http_status_code: int | None = None
    finish_reason: str | None = None
    feature: str | None = None  # a low-cardinality tag an app sets (watchkeeper.feature)


@dataclass(slots=True)
class PayloadRow:
    """Bulky data of one span, kept apart from `SpanRow` and compressed by the store.

    `input` and `output` are text (a prompt, a completion, a JSON list of chat messages,
    tool arguments/results); `attributes`, `resource` and `events` are JSON documents.
    """

    project: str
    trace_id: str
    span_id: str
    start_ns: int
    input: str | None = None
    output: str | None = None
    attributes: str = "{}"
    resource: str = "{}"
    events: str = "[]"
    links: str = "[]"
    status_message: str | None = None


@dataclass(slots=True)
class PackedPayload:
    """A `PayloadRow` already encoded by the store's payload codec (`io` and `meta` blobs).

    Ingest workers encode payloads ahead of the store writer when the store offers a codec
    (`payload_codec`): compression then runs in the workers, not in the writer thread.
    """

    project: str
    trace_id: str
    span_id: str
    start_ns: int
    io: bytes | None
    meta: bytes


@dataclass(slots=True)
class ScoreRow:
    """An evaluation or a piece of human feedback attached to a trace (or one span of it)."""

    project: str
    score_id: str
    trace_id: str
    name: str  # e.g. "user_feedback", "hallucination", "relevance"
    created_ns: int
    span_id: str | None = None
    value: float | None = None
    label: str | None = None
    comment: str | None = None
    source: str = "api"  # feedback, eval, human, api
    user_id: str | None = None


@dataclass(slots=True)
class SpanBatch:
    """A batch handed from ingest to the store writer: spans and their payloads."""

    spans: list[SpanRow] = field(default_factory=list)
    payloads: list[PayloadRow | PackedPayload] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spans)
