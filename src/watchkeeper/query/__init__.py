"""The query layer: one description of each span-store query, rendered per SQL dialect, and
the parsing of the API's query parameters (times, filters, numbers) into those descriptions."""

from watchkeeper.query._dialect import CLICKHOUSE, DUCKDB, Dialect, Params
from watchkeeper.query._params import (
    MAX_DURATION_MS,
    MAX_TIME_MS,
    RANGES,
    SCOPES,
    parse_bool,
    parse_filter,
    parse_int,
    parse_number,
    parse_time,
    shown,
    split_values,
)
from watchkeeper.query._render import DIMENSIONS, ORDERS, Query
from watchkeeper.query._results import CURSOR_PATTERN

__all__ = [
    "CLICKHOUSE",
    "CURSOR_PATTERN",
    "DIMENSIONS",
    "DUCKDB",
    "MAX_DURATION_MS",
    "MAX_TIME_MS",
    "ORDERS",
    "RANGES",
    "SCOPES",
    "Dialect",
    "Params",
    "Query",
    "parse_bool",
    "parse_filter",
    "parse_int",
    "parse_number",
    "parse_time",
    "shown",
    "split_values",
]
