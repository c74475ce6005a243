"""Logs over HTTP: `POST /v1/logs` (OTLP/HTTP, protobuf or JSON, optionally gzip) and the
query API, `GET /api/v1/logs` (records newest first, paged), `GET /api/v1/logs/histogram`
(counts per severity range over time) and `GET /api/v1/logs/services` (the services that
sent records, with their counts: the Logs page's service filter).

The OTLP route answers as the trace and metric receivers do (`_otlp`), with an
`ExportLogsServiceResponse` whose `partial_success.rejected_log_records` counts the records
turned away.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import ValidationError
from watchkeeper.model import SEVERITIES, severity_name
from watchkeeper.query import RANGES, parse_range, split_values
from watchkeeper.server import _otlp
from watchkeeper.server._access import Attempt, attempt_ingest, needs
from watchkeeper.server._logs_models import LogHistogramOut, LogPageOut, LogServicesOut
from watchkeeper.server._params import TIME_SCHEMA, integer, refuse_empty, typed
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services
from watchkeeper.store.logs import MAX_PAGE, LogFilter, Terms, step_for

router = APIRouter(tags=["logs"])
NS = 1_000_000_000
DEFAULT_RANGE_S = 3600
MAX_ATTRIBUTES = 20
SEVERITY_PATTERN = "^(1?[0-9]|2[0-4]|trace|debug|info|warn|error|fatal)$"
ATTR_PATTERN = r"^[A-Za-z0-9_.\-]{1,200}="

Project = Annotated[str, Depends(needs(Role.VIEWER))]
Many = Annotated[list[str], Query(description="repeatable or comma-separated")]
Time = Annotated[str | None, typed(TIME_SCHEMA, "unix milliseconds or ISO-8601")]


_answer = _otlp.export_answer(ExportLogsServiceResponse, "rejected_log_records")


@router.post(
    "/v1/logs",
    summary="OTLP/HTTP log export (protobuf or JSON)",
    response_class=Response,
    openapi_extra=_otlp.export_doc(
        "ExportLogsServiceRequest",
        "ExportLogsServiceResponse (partial_success counts rejected log records)",
        "rejectedLogRecords",
    ),
)
async def export_logs(request: Request, access: Attempt = Depends(attempt_ingest)) -> Response:
    """Receive an OTLP log export; acknowledge once its records are durable in the spool."""
    return await _otlp.receive(request, access, services(request).logs_ingest.accept, _answer)


def _severity(value: str | None) -> int:
    if not value:
        return 0
    if value.isdigit() and 0 <= int(value) <= 24:
        return int(value)
    if value.lower() in SEVERITIES:
        return SEVERITIES.index(value.lower()) * 4 + 1
    raise ValidationError(
        f"severity={value[:40]!r} is not a number 0-24 nor one of {', '.join(SEVERITIES)}"
    )


def _attributes(values: list[str]) -> tuple[tuple[str, str], ...]:
    if len(values) > MAX_ATTRIBUTES:
        raise ValidationError(f"at most {MAX_ATTRIBUTES} attr conditions")
    pairs = []
    for item in values:
        if not re.match(ATTR_PATTERN, item):
            raise ValidationError(
                f"attr={item[:60]!r} is not name=value (name: letters, digits, _.-)"
            )
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return tuple(pairs)


def _filter(
    request: Request,
    project: Project,
    start: Time = None,
    end: Time = None,
    window: Annotated[
        str | None, typed({"type": "string", "enum": list(RANGES)}, "ends now", alias="range")
    ] = None,
    service: Many = [],  # noqa: B006  (FastAPI copies defaults)
    severity: Annotated[
        str | None,
        typed(
            {"type": "string", "pattern": SEVERITY_PATTERN},
            "at least this: 0-24, or trace, debug, info, warn, error, fatal",
        ),
    ] = None,
    q: Annotated[
        str | None,
        typed(
            {"type": "string", "pattern": r"\w"},
            'words and "phrases" (in double quotes), all of them; whole words, any case',
        ),
    ] = None,
    attr: Annotated[
        list[str],
        typed(
            {
                "type": "array",
                "items": {"type": "string", "pattern": ATTR_PATTERN},
                "maxItems": MAX_ATTRIBUTES,
            },
            "key=value: the attribute equals the value (repeatable: all of them)",
        ),
    ] = [],  # noqa: B006
    trace_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    span_id: Annotated[str | None, Query(pattern="^[0-9a-f]{16}$")] = None,
) -> LogFilter:
    for name, value in (("start", start), ("end", end), ("range", window),
                        ("severity", severity), ("q", q), ("attr", attr)):  # fmt: skip
        refuse_empty(value, name)
    now_s = services(request).clock()
    lo, hi = parse_range(start, end, window, now_s)
    hi = hi if hi is not None else round(now_s * NS) + 1
    lo = lo if lo is not None else hi - DEFAULT_RANGE_S * NS
    return LogFilter(
        project,
        lo,
        hi,
        services=split_values(service, "service"),
        min_severity=_severity(severity),
        text=Terms.parse(q) if q else None,
        attributes=_attributes(attr),
        trace_id=trace_id or "",
        span_id=span_id or "",
    )


Filter = Annotated[LogFilter, Depends(_filter)]
Limit = Annotated[int, integer("limit", 100, 1, MAX_PAGE, "records per page")]
Step = Annotated[
    int, integer("step_ms", 60_000, 1000, 366 * 86_400_000, "ms per bucket", multiple_of=1000)
]


def _record(r: Any) -> dict[str, Any]:
    out = asdict(r)
    out["attributes"] = orjson.loads(r.attributes)
    out["resource"] = orjson.loads(r.resource)
    out["severity"] = severity_name(r.severity_number)
    out["time_ms"] = r.time_ns // 1_000_000
    out["observed_ms"] = r.observed_ns // 1_000_000
    return out


@router.get("/api/v1/logs", summary="Log records, newest first, paged", response_model=LogPageOut)
async def logs(
    request: Request,
    f: Filter,
    limit: Limit,
    cursor: Annotated[str | None, Query(pattern="^[0-9]{1,19}-[0-9a-f]{16}$")] = None,
) -> JSONResponse:
    """Records matching every condition given, newest first; `next_cursor` pages on."""
    store = services(request).logs_ingest.store
    page = await run_in_threadpool(store.search, f, limit, cursor)
    return JSONResponse({"records": [_record(r) for r in page.records], "next_cursor": page.cursor})


@router.get(
    "/api/v1/logs/histogram",
    summary="Log records per severity range over time",
    response_model=LogHistogramOut,
)
async def histogram(request: Request, f: Filter, step_ms: Step) -> JSONResponse:
    """Counts per time bucket and severity range; the answer's `step_ms` is the one asked
    for, or a larger one when that would give more than 1,000 buckets."""
    store = services(request).logs_ingest.store
    step_ns = step_for(f.start_ns, f.end_ns, step_ms * 1_000_000)
    rows = await run_in_threadpool(store.histogram, f, step_ns)
    return JSONResponse(
        {
            "step_ms": step_ns // 1_000_000,
            "buckets": [
                {"time_ms": t // 1_000_000, "severity": severity_name(s), "count": n}
                for t, s, n in rows
            ],
        }
    )


@router.get(
    "/api/v1/logs/services",
    summary="Services that sent log records in a range, with their counts",
    response_model=LogServicesOut,
)
async def log_services(request: Request, f: Filter) -> JSONResponse:
    """The services with records matching every condition given (the range at least), most
    records first."""
    store = services(request).logs_ingest.store
    rows = await run_in_threadpool(store.services, f)
    return JSONResponse({"services": [{"service": s.service, "records": s.records} for s in rows]})
