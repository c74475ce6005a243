"""The query API (docs/api.md): summaries, breakdowns, series, spans, traces, sessions, scores.

Endpoints are plain `def`s, so FastAPI runs the blocking store calls in its threadpool and
the event loop keeps serving. Every query is scoped to the project of the caller's key.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, replace
from typing import Annotated, Any

import orjson
import pydantic
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import NotFound, ValidationError
from watchkeeper.model import ScoreRow
from watchkeeper.query import (
    CURSOR_PATTERN,
    DIMENSIONS,
    ORDERS,
    RANGES,
    SCOPES,
    parse_bool,
    parse_filter,
    parse_int,
    parse_number,
    split_values,
)
from watchkeeper.query import api_models as m
from watchkeeper.server._access import needs
from watchkeeper.server._params import (
    DURATION_SCHEMA,
    TIME_SCHEMA,
    boolean,
    integer,
    refuse_empty,
    typed,
)
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services
from watchkeeper.store import SpanFilter, Store

router = APIRouter(prefix="/api/v1", tags=["query"])
DEFAULT_BOUNDS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
#: The project of a request that reads it (every route here but POST /scores).
Project = Annotated[str, Depends(needs(Role.VIEWER))]
#: The project of a request that writes feedback or a score, as an app's ingest key does.
IngestProject = Annotated[str, Depends(needs(Role.INGEST))]
Text = Annotated[str | None, Query()]
Many = Annotated[list[str], Query(description="repeatable or comma-separated")]
Time = Annotated[str | None, typed(TIME_SCHEMA, "unix milliseconds or ISO-8601")]
Duration = Annotated[str | None, typed(DURATION_SCHEMA, "milliseconds")]
Percentiles = Annotated[str | None, boolean(True, "false leaves p50-p99 out (faster)")]
MAX_LAST_N = 1_000_000
MAX_BREAKDOWNS = 5
MAX_BOUNDS = 100  # latency buckets of a heatmap (the store's limit)
LastN = Annotated[
    str | None,
    typed({"type": "integer", "minimum": 1, "maximum": MAX_LAST_N}, "only the newest N spans"),
]
Bounds = Annotated[
    list[str],
    typed(
        {"type": "array", "items": DURATION_SCHEMA, "minItems": 1, "maxItems": MAX_BOUNDS},
        f"1 to {MAX_BOUNDS} latency bucket bounds in ms, increasing (a 400 says when not); "
        "repeatable or comma-separated",
    ),
]
Step = Annotated[
    int,
    integer("step_ms", 60_000, 1000, 366 * 86_400_000, "ms per time bucket", multiple_of=1000),
]


def _filter(
    request: Request,
    project: Project,
    start: Time = None,
    end: Time = None,
    window: Annotated[
        str | None, typed({"type": "string", "enum": list(RANGES)}, "ends now", alias="range")
    ] = None,
    scope: Annotated[str | None, typed({"type": "string", "enum": list(SCOPES)})] = None,
    service: Many = [],  # noqa: B006  (FastAPI copies defaults)
    environment: Many = [],  # noqa: B006
    operation: Many = [],  # noqa: B006
    provider: Many = [],  # noqa: B006
    model: Many = [],  # noqa: B006
    outcome: Many = [],  # noqa: B006
    route: Many = [],  # noqa: B006
    agent: Many = [],  # noqa: B006
    feature: Many = [],  # noqa: B006
    user: Text = None,
    session: Text = None,
    trace_id: Text = None,
    name: Text = None,
    min_duration_ms: Duration = None,
    max_duration_ms: Duration = None,
    q: Annotated[str | None, Query(description="text in prompts/completions")] = None,
) -> SpanFilter:
    """The `SpanFilter` of a request's common query parameters."""
    # every parameter but the first two, by its query-string name
    given = {k: v for k, v in locals().items() if k not in ("request", "project")}
    given["range"] = given.pop("window")
    for name in _TYPED:
        refuse_empty(given[name], name)
    params = {k: (v if isinstance(v, list) else [v]) for k, v in given.items() if v}
    return parse_filter(project, params, services(request).clock())


#: Parameters whose schema is not free text: an empty value is refused, not taken as absent.
_TYPED = ("start", "end", "range", "scope", "min_duration_ms", "max_duration_ms")
Filter = Annotated[SpanFilter, Depends(_filter)]


def _store(request: Request) -> Store:
    return services(request).store


#: A dimension of `breakdown`, `breakdowns` and `timeseries`.
DIMENSION_SCHEMA: dict[str, Any] = {"type": "string", "enum": list(DIMENSIONS)}
By = Annotated[str, typed(DIMENSION_SCHEMA, "the dimension to group by")]
OptionalBy = Annotated[str | None, typed(DIMENSION_SCHEMA, "split the series by this")]
Order = Annotated[
    str | None, typed({"type": "string", "enum": list(ORDERS)}, "ranking; default count")
]


def _dimension(by: str | None, required: bool = True) -> Any:
    refuse_empty(by, "by")
    if by is None:
        if required:
            raise ValidationError(f"by is required: one of {', '.join(DIMENSIONS)}")
        return None
    if by not in DIMENSIONS:
        raise ValidationError(f"by={by!r} is not one of {', '.join(DIMENSIONS)}")
    return by


def _percentiles(text: str | None) -> bool:
    refuse_empty(text, "percentiles")
    return parse_bool(text, "percentiles", True)


@router.get("/summary", response_model=m.SummaryOut)
def summary(
    request: Request, f: Filter, last_n: LastN = None, percentiles: Percentiles = None
) -> dict[str, Any]:
    """Counts by outcome, latency percentiles, tokens and cost.

    `percentiles=false` leaves p50-p99 out (null), for views that show no latency (faster).
    """
    refuse_empty(last_n, "last_n")
    n = None if last_n is None else parse_int(last_n, "last_n", 0, high=MAX_LAST_N)
    with_percentiles = _percentiles(percentiles)
    return m.summary_json(_store(request).summary(f, n, percentiles=with_percentiles))


@router.get("/breakdown", response_model=m.Breakdown)
def breakdown(
    request: Request,
    f: Filter,
    by: By,
    limit: Annotated[int, integer("limit", 20, 1, 1000)] = 20,
    order: Order = None,
    percentiles: Percentiles = None,
) -> dict[str, Any]:
    """Summaries per value of a dimension, top `limit` by `order` (count|cost|errors|p95).

    `percentiles=false` leaves p50-p99 out, for rankings that show no latency (much faster).
    """
    dim = _dimension(by)
    refuse_empty(order, "order")
    with_p = _percentiles(percentiles)
    return _breakdown_json(_store(request), f, dim, limit, order, with_p)


def _breakdown_json(
    store: Store, f: SpanFilter, dim: Any, limit: int, order: str | None, percentiles: bool
) -> dict[str, Any]:
    groups = store.breakdown(f, dim, limit, order or "count", percentiles=percentiles)
    return {"by": dim, "groups": [{"key": g.key, **m.summary_json(g.summary)} for g in groups]}


@router.get("/breakdowns", response_model=m.Breakdowns)
async def breakdowns(
    request: Request,
    f: Filter,
    by: Annotated[
        list[str],
        typed(
            {"type": "array", "items": DIMENSION_SCHEMA, "minItems": 1, "maxItems": MAX_BREAKDOWNS},
            "1 to 5 dimensions, repeatable or comma-separated",
        ),
    ],
    limit: Annotated[int, integer("limit", 20, 1, 1000)] = 20,
    order: Order = None,
    percentiles: Percentiles = None,
) -> dict[str, Any]:
    """Several breakdowns (`by=model,user,feature`) of the same spans in one request.

    A dashboard that shows them side by side makes one round trip instead of several (a
    browser opens at most six connections to a server), and they run at the same time.
    """
    refuse_empty(by, "by")
    dims = [_dimension(d) for d in split_values(by, "by")]
    if not dims or len(dims) > MAX_BREAKDOWNS:
        raise ValidationError(f"by takes 1 to {MAX_BREAKDOWNS} dimensions (got {len(dims)})")
    store = _store(request)
    refuse_empty(order, "order")
    with_p = _percentiles(percentiles)
    items = await asyncio.gather(
        *(run_in_threadpool(_breakdown_json, store, f, d, limit, order, with_p) for d in dims)
    )
    return {"items": list(items)}


@router.get("/timeseries", response_model=m.Timeseries)
def timeseries(
    request: Request,
    f: Filter,
    step_ms: Step = 60_000,
    by: OptionalBy = None,
    limit: Annotated[int, integer("limit", 10, 1, 100)] = 10,
) -> dict[str, Any]:
    """Summaries per `step_ms` milliseconds, optionally per top-`limit` values of `by`."""
    points = _store(request).timeseries(f, step_ms // 1000, _dimension(by, False), limit)
    return {
        "step_ms": step_ms,
        "points": [
            {"t": p.bucket_ns // 1_000_000, "key": p.key, **m.summary_json(p.summary)}
            for p in points
        ],
    }


@router.get("/heatmap", response_model=m.HeatmapOut)
def heatmap(
    request: Request,
    f: Filter,
    step_ms: Step = 60_000,
    bounds: Bounds = [],  # noqa: B006
) -> dict[str, Any]:
    """Span counts per time bucket and latency bucket."""
    refuse_empty(bounds, "bounds")
    raw = split_values(bounds, "bounds") or [str(b) for b in DEFAULT_BOUNDS_MS]
    levels = [parse_number(b, "bounds") for b in raw]
    h = _store(request).heatmap(f, step_ms // 1000, [b for b in levels if b is not None])
    starts = [b // 1_000_000 for b in h.bucket_starts_ns]
    return {"step_ms": step_ms, "t": starts, "bounds_ms": h.bounds_ms, "counts": h.counts}


PageLimit = Annotated[int, integer("limit", 50, 1, 1000, "spans per page")]
#: The `next_cursor` of the page before (its shape declared: any text of it is a position).
Cursor = Annotated[
    str | None,
    typed({"type": "string", "pattern": CURSOR_PATTERN}, "the next_cursor of the page before"),
]
ListLimit = Annotated[int, integer("limit", 50, 1, 1000)]


def _page(store: Store, f: SpanFilter, limit: int, cursor: str | None) -> dict[str, Any]:
    refuse_empty(cursor, "cursor")
    page = store.search_spans(f, limit, cursor)
    return {"items": [m.span_json(s) for s in page.items], "next_cursor": page.next_cursor}


@router.get("/spans", response_model=m.SpanPage)
def spans(
    request: Request, f: Filter, limit: PageLimit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    """Spans newest first, paged; with `q`, a page may be short and still have a cursor."""
    return _page(_store(request), f, limit, cursor)


@router.get("/traces", response_model=m.SpanPage)
def traces(
    request: Request, f: Filter, limit: PageLimit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    """Root spans (one per trace), newest first, paged."""
    return _page(_store(request), replace(f, scope="requests"), limit, cursor)


@router.get("/traces/{trace_id}", response_model=m.TraceOut)
def trace(
    request: Request,
    trace_id: str,
    project: Project,
    limit: Annotated[int, integer("limit", 500, 1, 5000, "spans per page")] = 500,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The spans of one trace by start, a page at a time, with payloads and scores."""
    refuse_empty(cursor, "cursor")
    detail = _store(request).trace(project, trace_id, limit, cursor)
    if detail is None:
        raise NotFound(f"no trace {trace_id} in project {project}")
    spans = [
        {**m.span_json(s), "payload": _payload(detail.payloads.get(s.span_id))}
        for s in detail.spans
    ]
    return {
        "trace_id": trace_id,
        "spans": spans,
        "scores": [m.ms_json(s) for s in detail.scores],
        "span_count": detail.span_count,
        "next_cursor": detail.next_cursor,
    }


def _payload(p: Any) -> dict[str, Any] | None:
    return None if p is None else m.payload_json(p)


@router.get("/sessions", response_model=m.Activities)
def sessions(request: Request, f: Filter, limit: ListLimit = 50) -> dict[str, Any]:
    """Sessions active in the range, most recent first."""
    rows = _store(request).sessions(f, limit)
    return {"items": [m.ms_json(a) for a in rows]}


@router.get("/users", response_model=m.Activities)
def users(request: Request, f: Filter, limit: ListLimit = 50) -> dict[str, Any]:
    """Users active in the range, most recent first."""
    rows = _store(request).users(f, limit)
    return {"items": [m.ms_json(a) for a in rows]}


@router.get("/scores/summary", response_model=m.ScoreSummaries)
def scores_summary(request: Request, f: Filter) -> dict[str, Any]:
    """Count, mean, pass rate and low share per score name (`name` narrows to one)."""
    rows = _store(request).scores_summary(replace(f, name=None), f.name)
    return {"items": [asdict(s) for s in rows]}


@router.get("/scores", response_model=m.Scores)
def scores(
    request: Request, f: Filter, limit: Annotated[int, integer("limit", 100, 1, 1000)] = 100
) -> dict[str, Any]:
    """Newest scores in the range (and of `trace_id`, when given)."""
    rows = _store(request).scores(f, limit)
    return {"items": [m.ms_json(s) for s in rows]}


_SCORE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": m.ScoreIn.model_json_schema()}},
    }
}


@router.post("/scores", status_code=201, response_model=m.ScoreOut, openapi_extra=_SCORE_BODY)
async def add_score(request: Request, project: IngestProject) -> JSONResponse:
    """Record feedback or an evaluation on a trace."""
    try:
        body = m.ScoreIn.model_validate(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, pydantic.ValidationError) as exc:
        raise ValidationError(f"invalid score: {_first_error(exc)}") from None
    if body.value is None and body.label is None:
        raise ValidationError("a score needs a value, a label, or both")
    svc = services(request)
    row = ScoreRow(
        project=project,
        score_id=uuid.uuid4().hex,
        trace_id=body.trace_id,
        name=body.name,
        created_ns=round(svc.clock() * 1e9),
        span_id=body.span_id,
        value=body.value,
        label=body.label,
        comment=body.comment,
        source=body.source,
        user_id=body.user_id,
    )
    await run_in_threadpool(svc.store.write_scores, [row])
    return JSONResponse(m.ms_json(row), status_code=201)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        e = exc.errors()[0]
        return f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
    return "the body is not JSON"


def _values(store: Store, f: SpanFilter, by: Any) -> list[str]:
    groups = store.breakdown(f, by, limit=1000, percentiles=False)
    return sorted(g.key for g in groups if g.key)


@router.get("/services", response_model=m.ServiceValues)
def services_list(request: Request, f: Filter) -> dict[str, Any]:
    """Services seen in the range, with the environments and models seen there."""
    store = _store(request)
    return {
        "items": _values(store, f, "service"),
        "environments": _values(store, f, "environment"),
        "models": _values(store, f, "model"),
    }


@router.get("/environments", response_model=m.Values)
def environments_list(request: Request, f: Filter) -> dict[str, Any]:
    """Deployment environments seen in the range."""
    return {"items": _values(_store(request), f, "environment")}


@router.get("/models", response_model=m.Values)
def models_list(request: Request, f: Filter) -> dict[str, Any]:
    """Models (response model, else request model) seen in the range."""
    return {"items": _values(_store(request), f, "model")}
