"""Operational endpoints: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.

`/metrics` is open for the server's health (ingest, spool, store, alerting, process). The
span-derived series carry project data, so with auth on they come only with a key, and only
that key's project; the admin token sees every project. With auth off (the server listens on
loopback only) everything is served, as before.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from watchkeeper.errors import StoreError
from watchkeeper.server._services import describe, services

router = APIRouter(include_in_schema=False)


class _OneProject(Collector):
    """The samples of a registry whose `project` label is one project's."""

    def __init__(self, registry: CollectorRegistry, project: str) -> None:
        self._registry = registry
        self._project = project

    def collect(self) -> Iterator[Metric]:
        """Each metric family, with only this project's samples."""
        for family in self._registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if s.labels.get("project") == self._project]
            if kept.samples:
                yield kept


def _span_series(request: Request) -> CollectorRegistry | None:
    """What of the span-derived series this request may see; None: nothing."""
    svc = services(request)
    caller = svc.keys.identify(
        request.headers.get("authorization"),
        request.headers.get("x-api-key"),
        where=describe(request),
    )
    if caller is None:
        return None if svc.keys.required else svc.span_registry
    if caller.project is None:  # the admin token
        return svc.span_registry
    view = CollectorRegistry(auto_describe=False)
    view.register(_OneProject(svc.span_registry, caller.project))
    return view


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Health metrics, and the span-derived metrics the caller may see, as Prometheus text."""
    svc = services(request)
    spans = _span_series(request)
    body = generate_latest(svc.registry)
    if spans is not None:
        body += generate_latest(spans)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


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
