"""Operational endpoints: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from watchkeeper.errors import StoreError
from watchkeeper.server._services import services

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Self metrics and span-derived metrics in the Prometheus text format."""
    return Response(generate_latest(services(request).registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers and ingest keeps up; records set aside are reported."""
    svc = services(request)
    problems: list[str] = []
    try:
        svc.store.ping()
    except StoreError as exc:
        problems.append(str(exc))
    body: dict[str, object] = {"status": "ok"}
    if svc.ingest is not None:
        problems += svc.ingest.problems()
        held = svc.ingest.dead_letter.count()
        body["backlog_age_s"] = round(svc.ingest.backlog_age_s, 3)
        body["dead_letter_records"] = held
        if held:
            body["status"] = "degraded"
            body["hint"] = "records were set aside: watchkeeper dead-letter list"
    if problems:
        body |= {"status": "unavailable", "error": "; ".join(problems)}
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
