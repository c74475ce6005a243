"""Dashboards over HTTP: list, read, create, replace and delete the YAML dashboards of
`watchkeeper.dashboards`, and export one as Grafana JSON.

Reads need a viewer of the project, changes an editor (and are audited). A dashboard saved
here belongs to the caller's project unless it says `project: "*"` (every project's: an
admin's change, like a file of the config directory); the shipped ones (Infrastructure among
them) are read-only: save a copy under another id to change one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from watchkeeper.alerting.exports import grafana_dashboard
from watchkeeper.config import describe
from watchkeeper.dashboards import (
    ALL_PROJECTS,
    ID_PATTERN,
    Dashboard,
    DashboardFiles,
    Entry,
    parse_dashboard,
)
from watchkeeper.errors import ValidationError
from watchkeeper.server._access import needs, project_with
from watchkeeper.server._audit import audited
from watchkeeper.server._openapi import refusal
from watchkeeper.server._roles import Role
from watchkeeper.server._services import services

router = APIRouter(prefix="/api/v1/dashboards", tags=["dashboards"])
Viewing = Depends(needs(Role.VIEWER))
Editing = Depends(needs(Role.EDITOR))
DashboardBody = Annotated[
    dict[str, Any], Body(description="a dashboard, as in its YAML file (docs/dashboards.md)")
]
BoardId = Annotated[str, Path(pattern=ID_PATTERN, description="the dashboard's id")]
_BAD: dict[int | str, dict[str, Any]] = {
    400: refusal(
        "the body is not a valid dashboard: the message names the field (among what the "
        "schema cannot say: a PromQL expression that does not parse, a panel past the 24th "
        "column, a query with both or neither of promql and spans, another project)"
    )
}


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with its local `$defs` references replaced by what they name (the
    dashboard's models nest without cycles), so it stands alone in the OpenAPI document."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


def _body(*, id_in_path: bool) -> dict[str, Any]:
    """`openapi_extra` declaring the JSON body: a dashboard (its id the path's on PUT)."""
    schema = Dashboard.model_json_schema()
    schema = _inlined(schema, schema.get("$defs", {}))
    if id_in_path:  # the path's id: one in the body is read and dropped
        schema["required"] = [r for r in schema["required"] if r != "id"]
        schema["properties"]["id"] = {"description": "ignored: the path's"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class DashboardInfo(BaseModel):
    """A dashboard in the list: what it is and where it comes from."""

    id: str
    title: str
    description: str
    tags: list[str]
    source: str  # shipped | file
    editable: bool
    panels: int


class ProblemOut(BaseModel):
    """A file of the dashboards directory that is not a dashboard."""

    file: str
    error: str


class DashboardList(BaseModel):
    """The project's dashboards, and the files that could not be read."""

    items: list[DashboardInfo]
    problems: list[ProblemOut]


class DashboardOut(BaseModel):
    """One dashboard, whole."""

    dashboard: Dashboard
    source: str
    editable: bool


def _files(request: Request) -> DashboardFiles:
    files: DashboardFiles = services(request).dashboards
    return files


def _out(entry: Entry) -> dict[str, Any]:
    return {"dashboard": entry.dashboard, "source": entry.source, "editable": entry.editable}


def _shared_needs_admin(request: Request, old: Entry | None, *boards: Dashboard) -> None:
    """A dashboard every project sees changes only with an admin's key (403 otherwise); a
    shipped one not at all (the store answers 409, saying why)."""
    if old is not None and not old.editable:
        return
    if any(b.project == ALL_PROJECTS for b in boards):
        project_with(request, Role.ADMIN)


def _parsed(body: dict[str, Any], project: str, board_id: str | None = None) -> Dashboard:
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object describing a dashboard")
    data = {**body, **({"id": board_id} if board_id else {})}
    data.setdefault("project", project)
    try:
        board = parse_dashboard(data)
    except PydanticError as exc:
        raise ValidationError(describe(exc)) from None
    if board.project not in (project, ALL_PROJECTS):
        raise ValidationError(f"project: {board.project!r} is not this key's project {project!r}")
    return board


@router.get("", response_model=DashboardList)
def list_dashboards(request: Request, project: str = Viewing) -> dict[str, Any]:
    """The project's dashboards (shipped first), and files that are not dashboards."""
    entries, problems = _files(request).visible(project)
    items = [
        {**e.dashboard.model_dump(include={"id", "title", "description", "tags"}),
         "source": e.source, "editable": e.editable,
         "panels": sum(len(s.panels) for s in e.dashboard.sections)}
        for e in entries
    ]  # fmt: skip
    return {"items": items, "problems": [{"file": p.file, "error": p.error} for p in problems]}


@router.get("/{board_id}", response_model=DashboardOut)
def get_dashboard(request: Request, board_id: BoardId, project: str = Viewing) -> dict[str, Any]:
    """One dashboard."""
    return _out(_files(request).get(board_id, project))


@router.post(
    "",
    status_code=201,
    response_model=DashboardOut,
    openapi_extra=_body(id_in_path=False),
    responses={**_BAD, 409: refusal("the id is taken: choose another, or PUT to replace")},
)
def create_dashboard(
    request: Request, body: DashboardBody, project: str = Editing
) -> dict[str, Any]:
    """Save a new dashboard as `<id>.yaml` in the dashboards directory."""
    board = _parsed(body, project)
    _shared_needs_admin(request, None, board)
    with audited(request, "dashboard.create", f"dashboard {board.id}", project) as change:
        entry = _files(request).save(board, project, create=True)
        change.after = board.model_dump(mode="json")
    return _out(entry)


@router.put(
    "/{board_id}",
    response_model=DashboardOut,
    openapi_extra=_body(id_in_path=True),
    responses={**_BAD, 409: refusal("a shipped dashboard: save a copy under another id")},
)
def replace_dashboard(
    request: Request, board_id: BoardId, body: DashboardBody, project: str = Editing
) -> dict[str, Any]:
    """Replace a dashboard of the directory (its file is rewritten)."""
    files = _files(request)
    old = files.get(board_id, project)
    board = _parsed(body, project, board_id)
    _shared_needs_admin(request, old, board, old.dashboard)
    with audited(request, "dashboard.update", f"dashboard {board_id}", project) as change:
        entry = files.save(board, project, create=False)
        change.before = old.dashboard.model_dump(mode="json")
        change.after = board.model_dump(mode="json")
    return _out(entry)


@router.delete(
    "/{board_id}", status_code=204, responses={409: refusal("a shipped dashboard stays")}
)
def delete_dashboard(request: Request, board_id: BoardId, project: str = Editing) -> None:
    """Delete a dashboard's file."""
    files = _files(request)
    old = files.get(board_id, project)
    _shared_needs_admin(request, old, old.dashboard)
    with audited(request, "dashboard.delete", f"dashboard {board_id}", project) as change:
        files.delete(board_id, project)
        change.before = old.dashboard.model_dump(mode="json")


@router.get("/{board_id}/grafana", response_model=dict[str, Any])
def grafana(request: Request, board_id: BoardId, project: str = Viewing) -> dict[str, Any]:
    """The dashboard as a Grafana dashboard JSON model (import it, or provision it)."""
    entry = _files(request).get(board_id, project)
    return grafana_dashboard(entry.dashboard, services(request).config.base_url).model
