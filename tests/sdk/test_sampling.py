"""The SDK's sampler decides as OpenTelemetry's `ParentBased(TraceIdRatioBased(rate))` does."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from watchkeeper.sdk._sampling import ParentOrRatio

STATE = TraceState([("vendor", "x")])


def parent(sampled: bool, remote: bool, state: TraceState | None = None) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    ctx = SpanContext(0xABC, 0xDEF, is_remote=remote, trace_flags=flags, trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(ctx))


PARENTS: dict[str, Context | None] = {
    "no context": None,
    "empty context": Context(),
    "invalid parent": trace.set_span_in_context(trace.INVALID_SPAN),
    "local sampled": parent(True, False),
    "local not sampled": parent(False, False, STATE),
    "remote sampled": parent(True, True, STATE),
    "remote not sampled": parent(False, True),
}
TRACE_IDS = (1, 2**63 - 1, 2**63, 2**64 - 1, (7 << 64) | 5, 0x0AF7651916CD43DD8448EB211C80319C)


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("where", list(PARENTS))
def test_same_decisions_as_the_opentelemetry_composition(rate: float, where: str) -> None:
    ours, theirs = ParentOrRatio(rate), ParentBased(TraceIdRatioBased(rate))
    attrs = {"a": 1}
    for trace_id in TRACE_IDS:
        got = ours.should_sample(PARENTS[where], trace_id, "span", attributes=attrs)
        want = theirs.should_sample(PARENTS[where], trace_id, "span", attributes=attrs)
        assert (got.decision, dict(got.attributes), got.trace_state) == (
            want.decision,
            dict(want.attributes),
            want.trace_state,
        ), (where, rate, trace_id)


def test_the_ratio_splits_roots_by_trace_id() -> None:
    sampler = ParentOrRatio(0.5)
    sampled = [sampler.should_sample(None, t, "s").decision.is_sampled() for t in TRACE_IDS[:4]]
    assert sampled == [True, True, False, False]
