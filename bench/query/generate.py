"""Vectorised generation of realistic span columns (numpy + pyarrow), for the query benchmark.

A trace is an HTTP request (root) calling two models and a tool: four spans. Traces start
uniformly over `days` days and are written in time order, as ingest would write them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watchkeeper.model import PayloadRow
from watchkeeper.store._arrow import spans_table
from watchkeeper.store._payload import PayloadCodec

SPANS_PER_TRACE = 4
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "claude-haiku-4", "gemini-2.5-pro", "o3"]
PROVIDERS = ["openai", "openai", "anthropic", "anthropic", "gcp.gemini", "openai"]
PRICE_IN = np.array([2.5, 0.15, 3.0, 0.8, 1.25, 2.0]) / 1e6
PRICE_OUT = np.array([10.0, 0.6, 15.0, 4.0, 10.0, 8.0]) / 1e6
SERVICES = ["chat-api", "search-api", "agent-worker", "summarizer", "support-bot"]
ROUTES = ["/v1/chat", "/v1/search", "/v1/agent", "/v1/summarize", "/v1/support"]
OUTCOMES = ["success", "error", "timeout", "fallback", "rejected"]
OUTCOME_P = [0.94, 0.03, 0.015, 0.01, 0.005]
PAYLOAD_POOL = 4096  # distinct payload documents, reused (compressing 5M prompts takes too long)


@dataclass(frozen=True)
class Shape:
    """How much data and over which time."""

    traces: int
    days: int = 7
    end_ns: int = 1_763_900_000 * 1_000_000_000
    users: int = 50_000
    sessions: int = 500_000
    seed: int = 42


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    raw = rng.bytes(n * nbytes).hex()
    width = 2 * nbytes
    return pa.array([raw[i : i + width] for i in range(0, n * width, width)], pa.string())


def _pick(names: list[str], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(names, pa.string()), pa.array(idx))


def _numbered(prefix: str, idx: np.ndarray) -> pa.Array:
    names = [f"{prefix}-{i}" for i in range(int(idx.max()) + 1)]
    return _pick(names, idx)


def _interleave(parts: list[np.ndarray]) -> np.ndarray:
    """Row j of part k becomes row j*K+k: a trace's spans are adjacent."""
    return np.stack(parts, axis=1).reshape(-1)


def chunk(shape: Shape, first: int, count: int) -> pa.Table:
    """Spans of traces [first, first+count) as an Arrow table in the `spans` layout."""
    rng = np.random.default_rng([shape.seed, first])
    k, n = SPANS_PER_TRACE, count
    span_ms = shape.days * 86_400_000
    start0 = shape.end_ns - span_ms * 1_000_000
    t = (
        start0
        + np.sort(rng.integers(0, span_ms * 1_000_000 // shape.traces, n))
        + (np.arange(first, first + n, dtype=np.int64) * (span_ms * 1_000_000 // shape.traces))
    )
    llm_ms = rng.lognormal(np.log(900), 0.7, (n, 2))
    tool_ms = rng.lognormal(np.log(40), 0.5, n)
    root_ms = llm_ms.sum(axis=1) + tool_ms + rng.uniform(2, 30, n)
    dur = _interleave([root_ms, llm_ms[:, 0], llm_ms[:, 1], tool_ms]) * 1e6
    offsets = np.stack([np.zeros(n), np.full(n, 1e6), llm_ms[:, 0] * 1e6 + 2e6,
                        (llm_ms.sum(axis=1) + 3) * 1e6], axis=1)  # fmt: skip
    start = (t[:, None] + offsets.astype(np.int64)).reshape(-1)
    kind = np.tile(np.arange(k), n)  # 0 root, 1-2 llm, 3 tool
    is_llm = (kind == 1) | (kind == 2)
    outcome_t = rng.choice(len(OUTCOMES), n, p=OUTCOME_P)
    outcome = np.where(kind <= 1, np.repeat(outcome_t, k), 0)
    model = rng.choice(len(MODELS), n * k, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    tin = rng.integers(200, 4000, n * k)
    tout = rng.integers(20, 800, n * k)
    cost = tin * PRICE_IN[model] + tout * PRICE_OUT[model]
    svc = np.repeat(rng.integers(0, len(SERVICES), n), k)
    user = np.repeat((rng.zipf(1.3, n) - 1) % shape.users, k)
    session = np.repeat(rng.integers(0, shape.sessions, n), k)
    tids = _hex_ids(rng, n, 16)
    sids = _hex_ids(rng, n * k, 8)
    root_ids = pc.take(sids, pa.array(np.arange(n) * k))
    no_llm = pa.array(~is_llm)
    cols = {
        "project": pa.array(np.where(np.repeat(rng.random(n) < 0.9, k), "bench", "other")),
        "trace_id": pc.take(tids, pa.array(np.repeat(np.arange(n), k))),
        "span_id": sids,
        "parent_span_id": pc.if_else(
            pa.array(kind == 0), "", pc.take(root_ids, pa.array(np.repeat(np.arange(n), k)))
        ),
        "name": _pick(["POST", "chat", "chat", "execute_tool web_search"], kind),
        "start_ns": pa.array(start, pa.int64()),
        "duration_ns": pa.array(dur.astype(np.int64)),
        "service": _pick(SERVICES, svc),
        "environment": _pick(["prod", "staging"], (rng.random(n * k) < 0.1).astype(int)),
        "span_kind": _pick(["server", "client", "client", "internal"], kind),
        "operation": _pick(["http", "llm", "llm", "tool"], kind),
        "status_code": _pick(["unset", "error", "error", "ok", "ok"], outcome),
        "outcome": _pick(OUTCOMES, outcome),
        "error_type": pc.if_else(pa.array(outcome == 1), "RateLimitError", None),
        "provider": pc.if_else(no_llm, None, _pick(PROVIDERS, model)),
        "request_model": pc.if_else(no_llm, None, _pick(MODELS, model)),
        "response_model": pc.if_else(no_llm, None, _pick(MODELS, model)),
        "agent_name": pc.if_else(pa.array(kind == 3), "planner", None),
        "tool_name": pc.if_else(pa.array(kind == 3), "web_search", None),
        "input_tokens": pa.array(tin, mask=~is_llm),
        "output_tokens": pa.array(tout, mask=~is_llm),
        "cache_read_tokens": pa.array(tin // 4, mask=~is_llm),
        "cache_write_tokens": pa.array(np.zeros(n * k, np.int64), mask=~is_llm),
        "reasoning_tokens": pa.array(np.zeros(n * k, np.int64), mask=~is_llm),
        "cost_usd": pa.array(cost, mask=~is_llm),
        "cost_source": pc.if_else(no_llm, "none", "estimated"),
        "user_id": _numbered("user", user),
        "session_id": _numbered("session", session),
        "http_method": pc.if_else(pa.array(kind == 0), "POST", None),
        "http_route": pc.if_else(pa.array(kind == 0), _pick(ROUTES, svc), None),
        "http_status_code": pa.array(
            np.where(outcome == 1, 500, np.where(outcome == 2, 504, 200)).astype(np.int32),
            mask=kind != 0,
        ),
        "finish_reason": pc.if_else(no_llm, None, "stop"),
        "feature": pc.if_else(no_llm, None, _pick(["answer", "summarize", "classify"], model % 3)),
    }
    table = pa.table(cols)
    return table.cast(spans_table([]).schema)


def payload_pool(codec: PayloadCodec) -> tuple[pa.Array, pa.Array]:
    """PAYLOAD_POOL distinct compressed (io, meta) blobs of about 2 KB of chat text each."""
    rng = np.random.default_rng(7)
    words = [
        *[
            "the",
            "customer",
            "asked",
            "about",
            "refund",
            "policy",
            "order",
            "shipping",
            "invoice",
            "account",
            "password",
        ],
        *[
            "reset",
            "delivery",
            "late",
            "broken",
            "item",
            "warranty",
            "please",
            "help",
            "thanks",
            "answer",
            "explain",
        ],
    ]
    io, meta = [], []
    for i in range(PAYLOAD_POOL):
        text = " ".join(rng.choice(words, 300))
        p = PayloadRow(
            "x",
            "t",
            "s",
            0,
            input=f'[{{"role":"user","content":"{text}"}}]',
            output=" ".join(rng.choice(words, 80)),
            attributes=f'{{"gen_ai.request.model":"{MODELS[i % 6]}","i":{i}}}',
        )
        io.append(codec.io(p))
        meta.append(codec.meta(p))
    return pa.array(io, pa.binary()), pa.array(meta, pa.binary())


def payloads_for(spans: pa.Table, pool: tuple[pa.Array, pa.Array], seed: int) -> pa.Table:
    """Payload rows of the model calls in `spans`, blobs drawn from the pool."""
    llm = spans.filter(pc.equal(spans["operation"], "llm"))
    pick = pa.array(np.random.default_rng(seed).integers(0, PAYLOAD_POOL, llm.num_rows))
    return pa.table(
        {
            "project": llm["project"],
            "trace_id": llm["trace_id"],
            "span_id": llm["span_id"],
            "start_ns": llm["start_ns"],
            "io": pc.take(pool[0], pick),
            "meta": pc.take(pool[1], pick),
        }
    )
