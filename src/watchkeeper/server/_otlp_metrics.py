"""OTLP/HTTP metric receiver: `POST /v1/metrics` (protobuf or JSON, optionally gzip).

The trace receiver's answers (`_otlp`), with an `ExportMetricsServiceResponse`:
`partial_success.rejected_data_points` counts the points turned away.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from watchkeeper.server import _otlp
from watchkeeper.server._access import Attempt, attempt_ingest
from watchkeeper.server._services import services

router = APIRouter(tags=["otlp"])


_answer = _otlp.export_answer(ExportMetricsServiceResponse, "rejected_data_points")


@router.post(
    "/v1/metrics",
    summary="OTLP/HTTP metric export (protobuf or JSON)",
    response_class=Response,
    openapi_extra=_otlp.export_doc(
        "ExportMetricsServiceRequest",
        "ExportMetricsServiceResponse (partial_success counts rejected data points)",
        "rejectedDataPoints",
    ),
)
async def export_metrics(request: Request, access: Attempt = Depends(attempt_ingest)) -> Response:
    """Receive an OTLP metric export; acknowledge once its points are durable in the spool."""
    return await _otlp.receive(request, access, services(request).metrics_ingest.accept, _answer)
