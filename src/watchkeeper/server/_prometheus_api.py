"""The Prometheus HTTP API over the metric store, under `/prometheus/api/v1/`, so a Grafana
Prometheus data source (URL `http://host:4318/prometheus`) can use Watchkeeper.

Answers are Prometheus's: `{"status": "success", "data": ...}`, or `{"status": "error",
"errorType": ..., "error": ...}` with 400 (`bad_data`: a parse error, a bad parameter) or
422 (`execution`: e.g. many-to-many matching). Parameters come from the query string and,
for POST (Grafana's default), from a form body too. Every query is scoped to the project of
the caller's key, like every other read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from watchkeeper.errors import StoreOutOfMemory, ValidationError
from watchkeeper.query import (
    MAX_POINTS,
    MAX_TIME_MS,
    Engine,
    PromQLError,
    instant_result,
    matchers_of,
    parse_prom_time,
    parse_promql,
    parse_step,
    range_result,
)
from watchkeeper.server._access import needs
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services
from watchkeeper.store.metrics import Matcher, MetricsStore

log = logging.getLogger("watchkeeper.server")

router = APIRouter(prefix="/prometheus/api/v1", tags=["prometheus"])
Project = Annotated[str, Depends(needs(Role.VIEWER))]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "a parameter refused (Prometheus's `bad_data`), the expression's parse "
        "error included: the schema cannot say which strings are PromQL"
    },
    422: {"description": "the query cannot be executed (Prometheus's `execution` error)"},
}
_FAR_MS = MAX_TIME_MS // 4  # the default start/end of series and label lookups
_TIME = {
    "type": "string",
    "pattern": r"^(|-?[0-9]+(\.[0-9]+)?"  # empty (the default, as Prometheus), unix seconds
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))$",  # RFC 3339
}
_PARAMS_DOC: dict[str, tuple[str, dict[str, Any]]] = {
    "query": ("a PromQL expression", {"type": "string", "minLength": 1}),
    "time": ("evaluation time: unix seconds or RFC 3339 (default: now)", _TIME),
    "start": ("unix seconds or RFC 3339", _TIME),
    "end": ("unix seconds or RFC 3339", _TIME),
    "step": (
        "resolution: seconds or a duration (15s)",
        {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?|([0-9]+(ms|s|m|h|d|w|y))+)$"},
    ),
    "match[]": (
        "a series selector; repeatable",
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ),
}


_RANGE_PARAMS = ("query", "start", "end", "step")


def _doc(*names: str, required: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "parameters": [
            {
                "name": n,
                "in": "query",
                "required": n in required,
                "description": _PARAMS_DOC[n][0],
                "schema": _PARAMS_DOC[n][1],
                **({"style": "form", "explode": True} if n == "match[]" else {}),
            }
            for n in names
        ]
    }


def _get_and_post(path: str, doc: dict[str, Any]) -> Callable[[Any], Any]:
    """Register a route for GET and for POST (a form body), each with its own operation id."""

    def register(endpoint: Any) -> Any:
        for method in ("GET", "POST"):
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                responses=_ERRORS,
                openapi_extra=doc,
                operation_id=f"prometheus_{endpoint.__name__}_{method.lower()}",
            )
        return endpoint

    return register


def _success(data: Any) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data})


def _error(exc: ValidationError) -> JSONResponse:
    kind = exc.kind if isinstance(exc, PromQLError) else "bad_data"
    status = 422 if kind == "execution" else 400
    return JSONResponse({"status": "error", "errorType": kind, "error": str(exc)}, status)


async def _params(request: Request) -> list[tuple[str, str]]:
    """Query string and, for a form POST, its body (bounded by the request limits)."""
    params = list(request.query_params.multi_items())
    if request.method == "POST":
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media == "application/x-www-form-urlencoded":
            body = await request.body()
            params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return params


def _one(params: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in params if k == name), None)


def _time(params: list[tuple[str, str]], name: str, default_ms: int) -> int:
    ms = parse_prom_time(_one(params, name), default_ms)
    if not -MAX_TIME_MS <= ms <= MAX_TIME_MS:
        raise PromQLError(f"{name} {ms / 1e3:g} is out of range")
    return ms


def _engine(request: Request) -> Engine:
    svc = services(request)
    cfg = svc.config.metrics
    return Engine(
        svc.metrics_ingest.store,
        lookback_ms=int(cfg.lookback_delta_s * 1000),
        max_samples=cfg.query_max_samples,
    )


async def _answer(request: Request, work: Callable[[list[tuple[str, str]]], Any]) -> JSONResponse:
    try:
        params = await _params(request)
        return _success(await asyncio.to_thread(work, params))
    except ValidationError as exc:
        return _error(exc)
    except StoreOutOfMemory as exc:  # Prometheus: 422 for a query that loads too much
        log.warning("prometheus api: %s (%s)", exc, exc.__cause__)
        return _error(PromQLError(str(exc), "execution"))


def _now_ms(request: Request) -> int:
    return int(services(request).clock() * 1000)


@_get_and_post("/query", _doc("query", "time", required=["query"]))
async def query(request: Request, project: Project) -> JSONResponse:
    """An instant query (Prometheus's /api/v1/query)."""
    engine, now = _engine(request), _now_ms(request)

    def work(params: list[tuple[str, str]]) -> Any:
        text = _one(params, "query")
        if not text:
            raise PromQLError("parse error: no expression found in input")
        at = _time(params, "time", now)
        return instant_result(engine.evaluate(project, text, [at]), at)

    return await _answer(request, work)


@_get_and_post(
    "/query_range",
    _doc("query", "start", "end", "step", required=["query", "start", "end", "step"]),
)
async def query_range(request: Request, project: Project) -> JSONResponse:
    """A range query (Prometheus's /api/v1/query_range)."""
    engine = _engine(request)

    def work(params: list[tuple[str, str]]) -> Any:
        text = _one(params, "query")
        if not text:
            raise PromQLError("parse error: no expression found in input")
        if not _one(params, "start") or not _one(params, "end"):
            raise PromQLError("start and end are required")
        start, end = _time(params, "start", 0), _time(params, "end", 0)
        step = parse_step(_one(params, "step"))
        if end < start:
            raise PromQLError("end timestamp must not be before start time")
        if (end - start) // step >= MAX_POINTS:
            raise PromQLError(
                f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        steps = np.arange(start, end + 1, step, dtype=np.int64)
        return range_result(engine.evaluate(project, text, steps), steps)

    return await _answer(request, work)


def _match_sets(params: list[tuple[str, str]]) -> list[list[Matcher]]:
    out = []
    for text in (v for k, v in params if k == "match[]"):
        node = parse_promql(text)
        if type(node).__name__ != "VectorSelector":
            raise PromQLError(f"invalid parameter 'match[]': {text!r} is not a series selector")
        out.append(matchers_of(node))
    return out


def _range(params: list[tuple[str, str]]) -> tuple[int, int]:
    return _time(params, "start", -_FAR_MS), _time(params, "end", _FAR_MS)


@_get_and_post("/series", _doc("match[]", "start", "end", required=["match[]"]))
async def series(request: Request, project: Project) -> JSONResponse:
    """The series that match selectors (Prometheus's /api/v1/series)."""
    store: MetricsStore = services(request).metrics_ingest.store

    def work(params: list[tuple[str, str]]) -> Any:
        sets = _match_sets(params)
        if not sets:
            raise PromQLError("no match[] parameter provided")
        return store.series(project, sets, *_range(params))

    return await _answer(request, work)


@_get_and_post("/labels", _doc("match[]", "start", "end"))
async def labels(request: Request, project: Project) -> JSONResponse:
    """Label names (Prometheus's /api/v1/labels)."""
    store: MetricsStore = services(request).metrics_ingest.store
    return await _answer(
        request, lambda params: store.label_names(project, _match_sets(params), *_range(params))
    )


@router.get(
    "/label/{name}/values",
    responses=_ERRORS,
    openapi_extra=_doc("match[]", "start", "end"),
)
async def label_values(request: Request, name: str, project: Project) -> JSONResponse:
    """The values of one label (Prometheus's /api/v1/label/<name>/values)."""
    store: MetricsStore = services(request).metrics_ingest.store

    def work(params: list[tuple[str, str]]) -> Any:
        sets = _match_sets(params)
        return store.label_values(project, name, sets, *_range(params))

    return await _answer(request, work)


@router.get("/metadata", openapi_extra={"parameters": [
    {"name": "metric", "in": "query", "required": False, "schema": {"type": "string"}},
]})  # fmt: skip
async def metadata(request: Request, project: Project) -> JSONResponse:
    """Each metric's type, help and unit (Prometheus's /api/v1/metadata)."""
    store: MetricsStore = services(request).metrics_ingest.store
    wanted = request.query_params.get("metric")
    return _success(
        {
            name: [{"type": m.type, "help": m.help, "unit": m.unit}]
            for name, m in sorted(store.metadata(project).items())
            if not wanted or name == wanted
        }
    )


@router.get("/status/buildinfo")
async def buildinfo(project: Project) -> JSONResponse:
    """What Grafana asks to tell which Prometheus it talks to."""
    return _success(
        {
            "version": "2.42.0",
            "revision": "watchkeeper",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    )


@router.get("/query_exemplars")
async def query_exemplars(project: Project) -> JSONResponse:
    """Exemplars are not kept (yet): always none."""
    return _success([])


@router.get("/rules")
async def rules(project: Project) -> JSONResponse:
    """Recording and alerting rules on metrics are not here yet: none."""
    return _success({"groups": []})
