"""JSON shapes of the log query API (`GET /api/v1/logs`, its histogram and services), for
`/openapi.json`: a record's fields are those of the store's `LogRow` (so they cannot drift),
its attributes and resource as objects, and its times in milliseconds too (the API's unit)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, get_type_hints

from pydantic import BaseModel, create_model

from watchkeeper.model import LogRow

_AS_OBJECTS = ("attributes", "resource")
_HINTS = get_type_hints(LogRow)

_FIELDS: dict[str, Any] = {
    f.name: (_HINTS[f.name], ...) for f in fields(LogRow) if f.name not in _AS_OBJECTS
}
LogRecordOut: Any = create_model(
    "LogRecord",
    __doc__="One log record; `time_ms`/`observed_ms` are `time_ns`/`observed_ns` in ms.",
    attributes=(dict[str, Any], ...),
    resource=(dict[str, Any], ...),
    severity=(str, ...),
    time_ms=(int, ...),
    observed_ms=(int, ...),
    **_FIELDS,
)


class LogPageOut(BaseModel):
    """Records newest first, and the cursor of the next page (null at the end)."""

    records: list[LogRecordOut]
    next_cursor: str | None


class LogBucketOut(BaseModel):
    """Records of one severity range (`trace` … `fatal`, `unspecified`) in one time bucket."""

    time_ms: int
    severity: str
    count: int


class LogHistogramOut(BaseModel):
    """Counts per bucket and severity range; buckets without records are left out."""

    step_ms: int
    buckets: list[LogBucketOut]


class LogServiceOut(BaseModel):
    """A service that sent records in the range, and how many of them matched."""

    service: str
    records: int


class LogServicesOut(BaseModel):
    """The services with matching records, most records first (for the service filter)."""

    services: list[LogServiceOut]
