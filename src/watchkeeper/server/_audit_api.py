"""The audit log over HTTP: `GET /api/v1/audit` (filters, newest first, paged) and
`GET /api/v1/audit/export` (JSON lines, oldest first, with each entry's hashes).

Who may read it: the server's admin token (every entry, the server's own included) and a
key or person with the admin role (the entries of the projects they administer). While auth
is off a request without a credential reads everything, like the rest of the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from watchkeeper.query import parse_time
from watchkeeper.server._access import manages_keys
from watchkeeper.server._audit import Filter
from watchkeeper.server._params import TIME_SCHEMA, integer, typed
from watchkeeper.server._roles import Principal, Role
from watchkeeper.server._services import services
from watchkeeper.server._units import ShownAsMs

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
#: A time as the query API takes one; entries from `since`, before `until`.
Time = Annotated[str | None, typed(TIME_SCHEMA, "unix s, unix ms or ISO-8601")]
#: The admin token, an admin of some project, or None while auth is off. `manages_keys`
#: is exactly that declaration (admin role, or the admin token).
Auditor = Annotated[Principal | None, Depends(manages_keys)]


class AuditEntry(BaseModel):
    """One change: who (never a secret), when (unix milliseconds), from where, what, before → after
    (secrets masked), and its place in the hash chain."""

    seq: int
    at: ShownAsMs
    actor_kind: str
    actor: str
    address: str
    user_agent: str
    action: str
    target: str
    project: str | None
    before: Any
    after: Any
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """Entries newest first; `next_before_seq` fetches the next (older) page, null at the end."""

    items: list[AuditEntry]
    next_before_seq: int | None


def _where(
    auditor: Auditor,
    project: str | None = Query(None, description="only this project's entries"),
    actor: str | None = Query(None, description="an actor's name or kind (key, user, cli …)"),
    action: str | None = Query(None, description="an action, or a prefix ending in * (rule.*)"),
    target: str | None = Query(None, description="exactly this target (rule checkout-latency)"),
    since: Time = None,
    until: Time = None,
) -> Filter:
    """What the request asks for, within the projects the caller administers."""
    projects = None
    if auditor is not None and not auditor.keys_admin:
        projects = frozenset(p for p, r in auditor.roles.items() if r.grants(Role.ADMIN))
    start = None if since is None else parse_time(since, "since") / 1e9
    end = None if until is None else parse_time(until, "until") / 1e9
    return Filter(projects, project, actor, action, target, start, end)


Where = Annotated[Filter, Depends(_where)]


@router.get("", response_model=AuditPage, summary="Audit log entries, newest first")
def list_audit(
    request: Request,
    where: Where,
    limit: int = integer("limit", 100, 1, 1000),
    before_seq: int = integer("before_seq", 0, 0, 2**62, "entries older than this; 0: newest"),
) -> dict[str, Any]:
    """Changes the caller may see, newest first, filtered; page with `before_seq`."""
    items = services(request).audit.page(where, limit, before_seq or None)
    more = len(items) == limit and items[-1].seq > 1
    return {
        "items": [e.as_json() for e in items],
        "next_before_seq": items[-1].seq if more else None,
    }


@router.get(
    "/export",
    summary="The audit log as JSON lines, oldest first",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_audit(request: Request, where: Where) -> StreamingResponse:
    """Every entry the caller may see, one JSON object a line, with `hash` and `prev_hash`
    (an entry's hash is SHA-256 over canonical JSON of its fields, before/after as text)."""
    audit = services(request).audit

    def lines() -> Iterator[bytes]:
        for entry in audit.entries(where):
            # the standard library's encoder: orjson refuses integers past 64 bits, which a
            # change's before/after may hold (any number a client sent)
            yield json.dumps(entry.as_json(), ensure_ascii=False).encode() + b"\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="watchkeeper-audit.jsonl"'},
    )
