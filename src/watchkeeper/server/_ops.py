"""Operational endpoints: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.

`/metrics` is open for the server's health (ingest, spool, store, alerting, process). The
span-derived series carry project data, so with auth on they come only with a key that may
read (viewer, editor or admin), and only that key's project; an ingest key sees none of them,
and the admin token every project's (Prometheus scrapes with one credential). With auth off
(the server listens on loopback only) a request without a key gets everything, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from watchkeeper.errors import StoreError
from watchkeeper.server._access import open_access, optional_credential
from watchkeeper.server._roles import Principal, Role
from watchkeeper.server._services import services

router = APIRouter(include_in_schema=False)
log = logging.getLogger("watchkeeper.server")


class _OneProject(Collector):
    """The samples of a registry whose `project` label is one project's."""

    def __init__(self, registry: CollectorRegistry, projects: set[str]) -> None:
        self._registry = registry
        self._projects = projects

    def collect(self) -> Iterator[Metric]:
        """Each metric family, with only these projects' samples."""
        for family in self._registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if s.labels.get("project") in self._projects]
            if kept.samples:
                yield kept


def _span_series(request: Request, caller: Principal | None) -> CollectorRegistry | None:
    """What of the span-derived series this request may see; None: nothing."""
    svc = services(request)
    if caller is None:
        return None if svc.keys.required else svc.span_registry
    if caller.keys_admin:
        return svc.span_registry
    readable = {p for p, role in caller.roles.items() if role.grants(Role.VIEWER)}
    if not readable:
        return None
    view = CollectorRegistry(auto_describe=False)
    view.register(_OneProject(svc.span_registry, readable))
    return view


@router.get("/metrics")
def metrics(request: Request, caller: Principal | None = Depends(optional_credential)) -> Response:
    """Health metrics, and the span-derived metrics the caller may see, as Prometheus text."""
    svc = services(request)
    spans = _span_series(request, caller)
    body = generate_latest(svc.registry)
    if spans is not None:
        body += generate_latest(spans)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", dependencies=[Depends(open_access)])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Depends(open_access)])
def readyz(request: Request) -> JSONResponse:
    """Readiness: the span store and the metadata database answer and ingest keeps up;
    records set aside are reported."""
    svc = services(request)
    problems: list[str] = []
    try:
        svc.store.ping()
    except StoreError as exc:  # the answer is open to anyone: the details go to the log
        log.warning("not ready: the span store does not answer: %s", exc)
        problems.append("the span store does not answer (the server log says why)")
    try:
        svc.meta.ping()  # keys, rules, sessions: shared by replicas on PostgreSQL
    except StoreError as exc:
        log.warning("not ready: %s", exc)
        problems.append("the metadata database does not answer (the server log says why)")
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
