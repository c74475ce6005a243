"""Shared vocabulary of Watchkeeper: outcomes, span rows, scores and attribute names.

Imported by both the SDK and the server, so it depends on the standard library only.
"""

from watchkeeper.model._columns import (
    PACKED,
    PAYLOADS,
    SPANS,
    Column,
    ColumnBatch,
    Columns,
    RowType,
)
from watchkeeper.model._logs import SEVERITIES, LogRow, severity_name
from watchkeeper.model._metrics import Labels, Metadata, Sample
from watchkeeper.model._outcome import OUTCOMES, Outcome
from watchkeeper.model._span import (
    COST_SOURCES,
    MAX_TIME_NS,
    OPERATIONS,
    PackedPayload,
    PayloadRow,
    ScoreRow,
    SpanBatch,
    SpanRow,
)

__all__ = [
    "COST_SOURCES",
    "MAX_TIME_NS",
    "OPERATIONS",
    "OUTCOMES",
    "PACKED",
    "PAYLOADS",
    "SEVERITIES",
    "SPANS",
    "Column",
    "ColumnBatch",
    "Columns",
    "Labels",
    "LogRow",
    "Metadata",
    "Outcome",
    "PackedPayload",
    "PayloadRow",
    "RowType",
    "Sample",
    "ScoreRow",
    "SpanBatch",
    "SpanRow",
    "severity_name",
]
