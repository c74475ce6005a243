"""Realistic OTLP protobuf requests for the ingest benchmark, built once and re-stamped.

A trace is an HTTP server root with three children: an LLM call (~1 KB prompt and ~1 KB
completion, tokens, model), a retrieval and a tool call. 5% of traces fail, 1% take longer
than 8 s. Requests are built from a few templates whose trace ids all start with a 12-byte
marker; each request replaces the marker with a fresh prefix (one `bytes.replace`), so every
request carries new trace ids without rebuilding protobuf in the sender.
"""

from __future__ import annotations

import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MARKER = b"\xfeWKBENCHMARK"  # 12 bytes no real id starts with
SPANS_PER_TRACE = 4
_WORDS = (
    "invoice",
    "refund",
    "order",
    "shipping",
    "delayed",
    "customer",
    "account",
    "password",
    "reset",
    "billing",
    "cycle",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "warehouse",
    "tracking",
    "number",
    "address",
    "payment",
    "card",
    "declined",
    "support",
    "ticket",
    "escalate",
    "manager",
    "policy",
    "return",
    "window",
    "warranty",
    "replacement",
)
_MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"))
_ROUTES = ("/chat", "/answer", "/summarize", "/search")


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(_WORDS)
        words.append(w)
        n += len(w) + 1
    return " ".join(words)[:size]


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value
    return kv


def _span(
    trace_id: bytes,
    span_id: int,
    parent: int,
    name: str,
    kind: int,
    start: int,
    dur: int,
    attrs: list[KeyValue],
    error: bool,
) -> Span:
    s = Span(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + dur,
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
    )
    s.attributes.extend(attrs)
    return s


def _trace(rng: random.Random, index: int, now_ns: int) -> list[Span]:
    tid = MARKER + index.to_bytes(4, "big")
    failed, slow = rng.random() < 0.05, rng.random() < 0.01
    total = int((rng.uniform(8.5, 20) if slow else rng.uniform(0.3, 3)) * 1e9)
    start = now_ns - total - rng.randrange(10**9)
    route = rng.choice(_ROUTES)
    provider, model = rng.choice(_MODELS)
    inp, out = rng.randrange(200, 4000), rng.randrange(20, 800)
    root = _span(
        tid,
        1,
        0,
        f"POST {route}",
        Span.SPAN_KIND_SERVER,
        start,
        total,
        [
            _kv("http.request.method", "POST"),
            _kv("http.route", route),
            _kv("url.path", route),
            _kv("http.response.status_code", 500 if failed else 200),
            _kv("user.id", f"user-{rng.randrange(5000)}"),
            _kv("session.id", f"sess-{rng.randrange(20000)}"),
        ],
        failed,
    )
    retrieval = _span(
        tid,
        2,
        1,
        "retrieve documents",
        Span.SPAN_KIND_INTERNAL,
        start + 1_000_000,
        int(total * 0.1),
        [
            _kv("gen_ai.operation.name", "retrieval"),
            _kv("gen_ai.data_source.id", "kb-main"),
        ],
        False,
    )
    llm_attrs = [
        _kv("gen_ai.operation.name", "chat"),
        _kv("gen_ai.provider.name", provider),
        _kv("gen_ai.request.model", model),
        _kv("gen_ai.response.model", model),
        _kv("gen_ai.usage.input_tokens", inp),
        _kv("gen_ai.usage.output_tokens", out),
        _kv("gen_ai.request.temperature", 0.2),
        _kv("gen_ai.response.finish_reasons", "stop"),
        _kv("gen_ai.input.messages", _text(rng, 1024)),
        _kv("gen_ai.output.messages", _text(rng, 1024)),
    ]
    if failed:
        llm_attrs.append(_kv("error.type", "openai.APIError"))
    llm = _span(
        tid,
        3,
        1,
        f"chat {model}",
        Span.SPAN_KIND_CLIENT,
        start + int(total * 0.12),
        int(total * 0.8),
        llm_attrs,
        failed,
    )
    tool = _span(
        tid,
        4,
        1,
        "execute_tool lookup_order",
        Span.SPAN_KIND_INTERNAL,
        start + int(total * 0.93),
        int(total * 0.05),
        [
            _kv("gen_ai.operation.name", "execute_tool"),
            _kv("gen_ai.tool.name", "lookup_order"),
            _kv("gen_ai.tool.call.arguments", f'{{"order_id": {rng.randrange(10**6)}}}'),
        ],
        False,
    )
    return [root, retrieval, llm, tool]


def template(
    seed: int, spans_per_request: int, service: str = "bench-app", now_ns: int | None = None
) -> bytes:
    """One serialized request of `spans_per_request` spans whose trace ids start with MARKER,
    ending about `now_ns` (default: now)."""
    rng = random.Random(seed)
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(
        [
            _kv("service.name", service),
            _kv("deployment.environment.name", "bench"),
            _kv("telemetry.sdk.language", "python"),
            _kv("service.version", "1.2.3"),
        ]
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns() if now_ns is None else now_ns
    for i in range(spans_per_request // SPANS_PER_TRACE):
        ss.spans.extend(_trace(rng, i, now))
    return request.SerializeToString()


class Clocked:
    """Templates that keep up with the clock: `moved()` shifts every span of each by the time
    since the last call and serializes them again (upb: ~4 ms a 512-span template, an eighth
    of building it anew). Real traffic's batches cover the last seconds; templates of a fixed
    time gave a soak's minute of spans one time range, which the writer's replay check and
    the trace lookups scanned whole."""

    def __init__(self, bodies: list[bytes], at_ns: int | None = None) -> None:
        """`bodies` built at `at_ns` (default: now)."""
        self._requests = [ExportTraceServiceRequest.FromString(b) for b in bodies]
        self._at = time.time_ns() if at_ns is None else at_ns

    def moved(self, now_ns: int | None = None) -> list[bytes]:
        """The templates, their spans moved to `now_ns` (default: now)."""
        now = time.time_ns() if now_ns is None else now_ns
        by, self._at = now - self._at, now
        for request in self._requests:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        span.start_time_unix_nano += by
                        span.end_time_unix_nano += by
        return [r.SerializeToString() for r in self._requests]


def stamp(body: bytes, request_no: int, run_id: int) -> bytes:
    """The template with fresh trace ids: the marker replaced by a per-request prefix."""
    prefix = run_id.to_bytes(4, "big") + request_no.to_bytes(8, "big")
    return body.replace(MARKER, prefix)
