"""Span stores (OLAP) and the metadata store (OLTP).

Each span-store query is described once (`_render`, from a `SpanFilter`) and spelled per SQL
`_dialect`; its rows become the protocol's results in `_results`. `_sql.SqlStore` runs every
read over an engine's `Executor`; an engine module (`duckdb`) holds only what differs:
connection, DDL, bulk insert, the writer.
"""

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
from watchkeeper.store._render import DIMENSIONS, ORDERS
from watchkeeper.store._results import CURSOR_PATTERN

__all__ = [
    "CURSOR_PATTERN",
    "DIMENSIONS",
    "ORDERS",
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
