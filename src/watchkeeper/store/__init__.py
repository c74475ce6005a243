"""Span stores (OLAP) and the metadata store (OLTP)."""

from watchkeeper.store._protocol import (
    Activity,
    Dimension,
    Group,
    Heatmap,
    Page,
    Point,
    Scope,
    ScoreSummary,
    SpanFilter,
    Store,
    Summary,
    TraceDetail,
)

__all__ = [
    "Activity",
    "Dimension",
    "Group",
    "Heatmap",
    "Page",
    "Point",
    "Scope",
    "ScoreSummary",
    "SpanFilter",
    "Store",
    "Summary",
    "TraceDetail",
]
