"""Prometheus remote-write 1.0 receiver: `POST /api/v1/write` (snappy-compressed protobuf).

So an existing Prometheus, Grafana Agent/Alloy or OpenTelemetry Collector forwards what it
scrapes (`remote_write: [{url: http://HOST:4318/api/v1/write, authorization: {credentials:
KEY}}]`). Answers as Prometheus's receiver (errors as `{"error": ...}`, as all of ours): 204
once the samples are durable in the spool;
400 (not retried by senders) for a body that cannot be read or a series without a name; 401,
403 for keys; 413 too large; 415 neither protobuf nor snappy; 503 with `Retry-After` under
overload (retried).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from watchkeeper.errors import (
    AuthError,
    BodyTimeout,
    DecodeError,
    Forbidden,
    Overloaded,
    PayloadTooLarge,
    UnsupportedContentType,
)
from watchkeeper.server._access import Attempt, attempt_ingest
from watchkeeper.server._http import read_body
from watchkeeper.server._services import services

router = APIRouter(tags=["prometheus"])
_BINARY = {"type": "string", "format": "binary"}
_STATUS: dict[type[Exception], int] = {
    Forbidden: 403,  # before its base class, AuthError
    AuthError: 401,
    DecodeError: 400,
    BodyTimeout: 408,
    PayloadTooLarge: 413,
    UnsupportedContentType: 415,
}


def _check_headers(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ("application/x-protobuf", "application/protobuf"):
        raise UnsupportedContentType(f"content type {media!r}: send application/x-protobuf")
    encoding = request.headers.get("content-encoding", "snappy").strip().lower()
    if encoding != "snappy":
        raise UnsupportedContentType(f"content encoding {encoding!r}: send snappy")


@router.post(
    "/api/v1/write",
    summary="Prometheus remote-write 1.0 (snappy protobuf WriteRequest)",
    status_code=204,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        "responses": {
            "415": {"description": "not application/x-protobuf with snappy"},
            "503": {"description": "overloaded: retry after Retry-After"},
        },
    },
)
async def remote_write(request: Request, access: Attempt = Depends(attempt_ingest)) -> Response:
    """Receive a remote-write request; 204 once its samples are durable in the spool."""
    svc = services(request)
    cfg = svc.config.ingest
    try:
        project = access.result()
        _check_headers(request)
        with svc.ingest.receiving() as reception:
            body = await read_body(request, cfg.max_body_bytes, reception, cfg.body_timeout_s)
            with svc.ingest.admission():
                result = await svc.metrics_ingest.accept_remote_write(project, body)
    except Overloaded as exc:
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return JSONResponse({"error": str(exc)}, 503, retry)
    except tuple(_STATUS) as exc:
        status = next(code for kind, code in _STATUS.items() if isinstance(exc, kind))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": str(exc)}, status, headers)
    if result.rejected:  # as Prometheus: the valid series are kept, the sender told why not
        message = f"{result.rejected} series refused: {result.error_message}"
        return JSONResponse({"error": message}, 400)
    return Response(status_code=204)
