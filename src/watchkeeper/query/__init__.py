"""The query layer: the parsing of the API's query parameters (times, filters, numbers) into
the span store's `SpanFilter`s, and the API's response models. (Each store query itself is
described and rendered per dialect in `watchkeeper.store`.)"""

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
from watchkeeper.store import CURSOR_PATTERN, DIMENSIONS, ORDERS

__all__ = [
    "CURSOR_PATTERN",
    "DIMENSIONS",
    "MAX_DURATION_MS",
    "MAX_TIME_MS",
    "ORDERS",
    "RANGES",
    "SCOPES",
    "parse_bool",
    "parse_filter",
    "parse_int",
    "parse_number",
    "parse_time",
    "shown",
    "split_values",
]
