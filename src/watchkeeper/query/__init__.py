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
    parse_range,
    parse_time,
    shown,
    split_values,
)
from watchkeeper.query._promql import Engine, matchers_of
from watchkeeper.query._promql import parse as parse_promql
from watchkeeper.query._promql_result import (
    MAX_POINTS,
    format_value,
    instant_result,
    parse_prom_time,
    parse_step,
    range_result,
)
from watchkeeper.query._promql_values import PromQLError
from watchkeeper.store import CURSOR_PATTERN, DIMENSIONS, ORDERS

__all__ = [
    "CURSOR_PATTERN",
    "DIMENSIONS",
    "MAX_DURATION_MS",
    "MAX_POINTS",
    "MAX_TIME_MS",
    "ORDERS",
    "RANGES",
    "SCOPES",
    "Engine",
    "PromQLError",
    "format_value",
    "instant_result",
    "matchers_of",
    "parse_bool",
    "parse_filter",
    "parse_int",
    "parse_number",
    "parse_prom_time",
    "parse_promql",
    "parse_range",
    "parse_step",
    "parse_time",
    "range_result",
    "shown",
    "split_values",
]
