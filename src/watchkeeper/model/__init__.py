"""Shared vocabulary of Watchkeeper: outcomes, span rows, scores and attribute names.

Imported by both the SDK and the server, so it depends on the standard library only.
"""

from watchkeeper.model._outcome import OUTCOMES, Outcome
from watchkeeper.model._span import (
    COST_SOURCES,
    OPERATIONS,
    PackedPayload,
    PayloadRow,
    ScoreRow,
    SpanBatch,
    SpanRow,
)

__all__ = [
    "COST_SOURCES",
    "OPERATIONS",
    "OUTCOMES",
    "Outcome",
    "PackedPayload",
    "PayloadRow",
    "ScoreRow",
    "SpanBatch",
    "SpanRow",
]
