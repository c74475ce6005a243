"""OTLP/HTTP metric receiver: `POST /v1/metrics` (protobuf or JSON, optionally gzip).

The trace receiver's answers (`_otlp`), with an `ExportMetricsServiceResponse`:
`partial_success.rejected_data_points` counts the points turned away.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from watchkeeper.server import _otlp
from watchkeeper.server._access import Attempt, attempt_ingest
from watchkeeper.server._services import services

router = APIRouter(tags=["otlp"])


def _export_response(rejected: int, error_message: str, as_json: bool) -> Response:
    msg = ExportMetricsServiceResponse()
    if rejected or error_message:
        msg.partial_success.rejected_data_points = rejected
        msg.partial_success.error_message = error_message
    if as_json:
        body = orjson.dumps(json_format.MessageToDict(msg))
        return Response(body, 200, media_type=_otlp._JSON)
    return Response(msg.SerializeToString(), 200, media_type=_otlp._PROTOBUF)


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = {**_otlp._OTLP_DOC}
    doc["requestBody"] = {"required": True, **_otlp._otlp_body("ExportMetricsServiceRequest")}
    ok = _otlp._otlp_body(
        "ExportMetricsServiceResponse (partial_success counts rejected data points)",
        {
            "type": "object",
            "properties": {
                "partialSuccess": {
                    "type": "object",
                    "properties": {
                        "rejectedDataPoints": {"type": "string", "pattern": "^[0-9]+$"},
                        "errorMessage": {"type": "string"},
                    },
                }
            },
        },
    )
    doc["responses"] = {**doc["responses"], "200": ok}
    return doc


@router.post(
    "/v1/metrics",
    summary="OTLP/HTTP metric export (protobuf or JSON)",
    response_class=Response,
    openapi_extra=_doc(),
)
async def export_metrics(request: Request, access: Attempt = Depends(attempt_ingest)) -> Response:
    """Receive an OTLP metric export; acknowledge once its points are durable in the spool."""
    svc = services(request)
    content_type = request.headers.get("content-type")
    encoding = request.headers.get("content-encoding")
    as_json = _otlp._is_json(content_type)
    accept = svc.metrics_ingest.accept
    response = await _otlp._handle(
        request, access, content_type, encoding, as_json, accept, _export_response
    )
    svc.ingest.count_request(response.status_code)
    return response
