"""OTLP/HTTP receiver: `POST /v1/traces` (protobuf or JSON, optionally gzip).

Answers follow the OTLP/HTTP spec: 200 with an `ExportTraceServiceResponse` in the request's
encoding (with `partial_success` when spans were rejected); errors carry a `google.rpc.Status`
in that encoding: 400 undecodable, 401 without a valid key, 403 with a key whose role does
not ingest (viewer), 408 body too slow, 413 too large, 415 content type, 429 with
`Retry-After` past a project's rate limit (logs), 503 with `Retry-After` under overload
(statuses OTLP exporters retry).

A body is received before it takes a decode slot, charged byte by byte to the receive
budget and cut off after `body_timeout_s`: senders that trickle hold neither slots nor
memory from the ones that send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from watchkeeper.errors import (
    AuthError,
    BodyTimeout,
    DecodeError,
    Forbidden,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    UnsupportedContentType,
)
from watchkeeper.server._access import Attempt, attempt_ingest
from watchkeeper.server._http import read_body
from watchkeeper.server._services import services

router = APIRouter(tags=["otlp"])

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_GZIP_SLACK = 64 * 1024  # incompressible data grows a little under gzip


def _compressed(content_encoding: str | None) -> bool:
    return (content_encoding or "identity").strip().lower() not in ("identity", "")


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == _JSON


def _status_response(
    http_status: int, grpc_code: int, message: str, as_json: bool, headers: dict[str, str] | None
) -> Response:
    status = status_pb2.Status(code=grpc_code, message=message)
    if as_json:
        body = orjson.dumps(json_format.MessageToDict(status))
        return Response(body, http_status, headers, media_type=_JSON)
    return Response(status.SerializeToString(), http_status, headers, media_type=_PROTOBUF)


Answer = Callable[[int, str, bool], Response]


def export_answer(message: Callable[[], Any], counter: str) -> Answer:
    """How a signal's receiver answers an accepted export: its `Export…ServiceResponse`, with
    `partial_success.<counter>` counting what was rejected, in the request's encoding."""

    def answer(rejected: int, error_message: str, as_json: bool) -> Response:
        msg = message()
        if rejected or error_message:
            setattr(msg.partial_success, counter, rejected)
            msg.partial_success.error_message = error_message
        if as_json:
            return Response(orjson.dumps(json_format.MessageToDict(msg)), 200, media_type=_JSON)
        return Response(msg.SerializeToString(), 200, media_type=_PROTOBUF)

    return answer


_export_response = export_answer(ExportTraceServiceResponse, "rejected_spans")


def _otlp_body(description: str, json_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            _PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            _JSON: {"schema": json_schema or {"type": "object"}},
        },
    }


#: ExportTraceServiceResponse in OTLP/JSON (proto3 JSON: int64 as a decimal string).
_EXPORT_JSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "partialSuccess": {
            "type": "object",
            "properties": {
                "rejectedSpans": {"type": "string", "pattern": "^[0-9]+$"},
                "errorMessage": {"type": "string"},
            },
        }
    },
}
#: google.rpc.Status in JSON.
_STATUS_JSON: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}


#: The wire format is OTLP's (opentelemetry-proto), in the content type of the request; the
#: schemas say only that much (a JSON Schema cannot describe a protobuf message).
_OTLP_DOC: dict[str, Any] = {
    "requestBody": {"required": True, **_otlp_body("ExportTraceServiceRequest")},
    "responses": {
        "200": _otlp_body(
            "ExportTraceServiceResponse (partial_success names rejected spans)", _EXPORT_JSON
        ),
        **{
            code: _otlp_body(f"google.rpc.Status: {why}", _STATUS_JSON)
            for code, why in {
                "400": "the body cannot be decoded",
                "401": "no key, or an unknown or revoked one",
                "403": "the key may not ingest",
                "408": "the body did not arrive in time",
                "413": "the body is larger than ingest.max_body_bytes",
                "415": "neither application/x-protobuf nor application/json",
                "429": "the project is over its rate limit: retry after Retry-After",
                "503": "overloaded: retry after Retry-After",
            }.items()
        },
    },
}


def export_doc(request: str, response: str, counter: str) -> dict[str, Any]:
    """The OpenAPI of a signal's receiver: its request and response messages' names, and the
    OTLP/JSON name of the response's rejected counter."""
    rejected = {
        counter: {"type": "string", "pattern": "^[0-9]+$"},
        "errorMessage": {"type": "string"},
    }
    ok = _otlp_body(
        response,
        {
            "type": "object",
            "properties": {"partialSuccess": {"type": "object", "properties": rejected}},
        },
    )
    return {
        **_OTLP_DOC,
        "requestBody": {"required": True, **_otlp_body(request)},
        "responses": {**_OTLP_DOC["responses"], "200": ok},
    }


async def receive(request: Request, access: Attempt, accept: Accept, answer: Answer) -> Response:
    """Take one export request: read, admit, `accept`, answer (the trace, metric and log
    receivers differ only in `accept` and `answer`)."""
    content_type = request.headers.get("content-type")
    encoding = request.headers.get("content-encoding")
    as_json = _is_json(content_type)
    response = await _handle(request, access, content_type, encoding, as_json, accept, answer)
    services(request).ingest.count_request(response.status_code)
    return response


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export (protobuf or JSON)",
    response_class=Response,
    openapi_extra=_OTLP_DOC,
)
async def export_traces(request: Request, access: Attempt = Depends(attempt_ingest)) -> Response:
    """Receive an OTLP trace export; acknowledge once the spans are durable in the spool."""
    return await receive(request, access, services(request).ingest.accept, _export_response)


#: What takes a received body: the trace or the metric ingest's `accept`.
Accept = Callable[..., Awaitable[Any]]


async def _handle(
    request: Request,
    access: Attempt,
    content_type: str | None,
    encoding: str | None,
    as_json: bool,
    accept: Accept | None = None,
    answer: Answer = _export_response,
) -> Response:
    svc = services(request)
    accept = accept or svc.ingest.accept
    cfg = svc.config.ingest
    limit = cfg.max_body_bytes + (_GZIP_SLACK if _compressed(encoding) else 0)
    try:
        project = access.result()
        with svc.ingest.receiving() as reception:  # bounds the body bytes held at once
            body = await read_body(request, limit, reception, cfg.body_timeout_s)
            with svc.ingest.admission():  # bounds the bodies being decoded at once
                result = await accept(
                    project,
                    body,
                    content_type or "",
                    encoding,
                    project_from_resource=not svc.keys.required,
                )
    except Forbidden as exc:
        return _status_response(403, code_pb2.PERMISSION_DENIED, str(exc), as_json, None)
    except AuthError as exc:
        return _status_response(
            401, code_pb2.UNAUTHENTICATED, str(exc), as_json, {"WWW-Authenticate": "Bearer"}
        )
    except DecodeError as exc:
        return _status_response(400, code_pb2.INVALID_ARGUMENT, str(exc), as_json, None)
    except BodyTimeout as exc:
        svc.ingest.count_slow_client()
        headers = {"Connection": "close"}
        return _status_response(408, code_pb2.DEADLINE_EXCEEDED, str(exc), as_json, headers)
    except PayloadTooLarge as exc:
        return _status_response(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), as_json, None)
    except UnsupportedContentType as exc:
        return _status_response(415, code_pb2.INVALID_ARGUMENT, str(exc), True, None)
    except RateLimited as exc:
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return _status_response(429, code_pb2.RESOURCE_EXHAUSTED, str(exc), as_json, retry)
    except Overloaded as exc:
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return _status_response(503, code_pb2.UNAVAILABLE, str(exc), as_json, retry)
    return answer(result.rejected, result.error_message, as_json)
