"""Span stores (OLAP) and the metadata store (OLTP).

Each span-store query is described once (`_render`, from a `SpanFilter`) and spelled per SQL
`_dialect`; its rows become the protocol's results in `_results`. `_sql.SqlStore` runs every
read over an engine's `Executor`; an engine module (`duckdb`) holds only what differs:
connection, DDL, bulk insert, the writer.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from watchkeeper.store._arrow import span_table


def __getattr__(name: str) -> Any:
    """`span_table` is imported when first used (PEP 562): Arrow and numpy stay out of the
    ingest workers, which import this package for the payload codec alone."""
    if name == "span_table":
        from watchkeeper.store._arrow import span_table

        return span_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "span_table",
]
