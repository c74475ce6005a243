"""The SDK's sampler: OpenTelemetry's `ParentBased(TraceIdRatioBased(rate))`, decided in one look.

The composition OpenTelemetry ships looks the parent span up three times per span (the
parent-based choice, then the delegate's trace state); every span the SDK starts, a guard's
included, pays for it. This sampler makes the same decisions, with the same trace state, from
one lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

_SAMPLE = Decision.RECORD_AND_SAMPLE
_DROP = Decision.DROP


class ParentOrRatio(Sampler):
    """Follow a valid parent's sampled flag; sample a root when its trace id is under `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._bound = TraceIdRatioBased.get_bound_for_rate(rate)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """Sample as the parent was sampled; a root by the low 64 bits of its trace id."""
        parent = get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            if parent.trace_flags.sampled:
                return SamplingResult(_SAMPLE, attributes, parent.trace_state)
            return SamplingResult(_DROP, None, parent.trace_state)
        if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound:
            return SamplingResult(_SAMPLE, attributes, None)
        return SamplingResult(_DROP, None, None)

    def get_description(self) -> str:
        """Described as the composition it stands for."""
        return f"ParentBased{{root:TraceIdRatioBased{{{self.rate}}}}}"
