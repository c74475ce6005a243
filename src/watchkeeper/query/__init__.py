"""The query layer: one description of each span-store query, rendered per SQL dialect."""

from watchkeeper.query._dialect import CLICKHOUSE, DUCKDB, Dialect, Params
from watchkeeper.query._render import DIMENSIONS, ORDERS, Query

__all__ = ["CLICKHOUSE", "DIMENSIONS", "DUCKDB", "ORDERS", "Dialect", "Params", "Query"]
