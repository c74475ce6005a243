"""Small hand-made span batches for alerting tests."""

from __future__ import annotations

import itertools

from watchkeeper.model import SpanBatch, SpanRow

NS = 1_000_000_000
_ids = itertools.count(1)


def requests(
    at: float,
    n: int,
    *,
    service: str = "chat",
    timeouts: int = 0,
    errors: int = 0,
    duration_ms: float = 200.0,
    project: str = "default",
    cost_usd: float | None = None,
) -> SpanBatch:
    """`n` root spans of `service` just before `at` (unix s): the first ones time out or fail."""
    spans = []
    for i in range(n):
        k = next(_ids)
        outcome = "timeout" if i < timeouts else "error" if i < timeouts + errors else "success"
        spans.append(
            SpanRow(
                project=project,
                trace_id=f"{k:032x}",
                span_id=f"{k:016x}",
                parent_span_id="",
                name="POST /chat",
                start_ns=int((at - 1.0) * NS) - i * 1000,
                duration_ns=int(duration_ms * 1e6),
                service=service,
                span_kind="server",
                operation="http",
                outcome=outcome,
                status_code="error" if outcome != "success" else "ok",
                cost_usd=cost_usd,
            )
        )
    return SpanBatch(spans)
