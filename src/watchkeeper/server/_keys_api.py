"""The keys API: create, list and revoke project API keys, each with a role, over HTTP.

While auth is on, every route needs the admin token (`auth.admin_token`), which manages
every project's keys, or a key with the admin role, which manages its own project's keys:
it lists only those, may create keys for its project only, and a key of another project is
"not found" to it. Without a valid credential: 401; with a key of a lesser role: 403. With
auth off the server listens on loopback only, and the routes are open like the rest of the
API. A new key's token is in the creation answer only; it is never stored or shown again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
import pydantic
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import NotFound, ValidationError
from watchkeeper.server._access import manages_keys
from watchkeeper.server._audit import audited
from watchkeeper.server._auth import ApiKey
from watchkeeper.server._query_api import _first_error
from watchkeeper.server._roles import DEFAULT_KEY_ROLE, Principal, Role, forbidden
from watchkeeper.server._services import describe, services
from watchkeeper.server._units import ShownAsMs

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])
#: Who manages keys: the admin token, an admin key, or None while auth is off.
Manager = Annotated[Principal | None, Depends(manages_keys)]


def _may_manage(manager: Principal | None, project: str) -> bool:
    return manager is None or manager.may_manage_keys(project)


class KeyIn(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")

    project: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(max_length=200)] = ""
    role: Role = Field(DEFAULT_KEY_ROLE, description="ingest (the default), viewer, editor, admin")


class KeyOut(BaseModel):
    """A stored key, without its secret (times in unix milliseconds)."""

    key_id: str
    project: str
    name: str
    role: Role
    created_at: ShownAsMs
    revoked_at: ShownAsMs | None


class KeyCreated(KeyOut):
    """A new key and its secret token, shown this once."""

    token: str


class Keys(BaseModel):
    """Every key, newest first."""

    items: list[KeyOut]


_KEY_BODY = {
    "requestBody": {
        "required": True,
        # Role is a component of the document (KeyOut has it): refer to it there.
        "content": {
            "application/json": {
                "schema": KeyIn.model_json_schema(ref_template="#/components/schemas/{model}")
            }
        },
    }
}


@router.post("", status_code=201, response_model=KeyCreated, openapi_extra=_KEY_BODY)
async def create_key(request: Request, manager: Manager) -> dict[str, Any]:
    """Create a key with a role (default ingest) in a project; the answer holds its token,
    which is not shown again."""
    # The body is read here, after manages_keys: a stranger learns nothing from a 400.
    try:
        body = KeyIn.model_validate(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, pydantic.ValidationError) as exc:
        raise ValidationError(f"invalid key: {_first_error(exc)}") from None
    keys = services(request).keys
    if manager is not None and not manager.may_manage_keys(body.project.strip()):
        refusal = forbidden(manager, Role.ADMIN, body.project.strip())
        raise keys.refuse("forbidden", manager.name, refusal, describe(request))

    def create() -> tuple[ApiKey, str]:
        with audited(request, "key.create", "key (new)", body.project.strip()) as change:
            key, token = keys.create(body.project, body.name, role=body.role)
            change.target, change.after = f"key {key.key_id}", asdict(key)  # never the token
        return key, token

    key, token = await run_in_threadpool(create)
    return {**asdict(key), "token": token}


@router.get("", response_model=Keys)
def list_keys(request: Request, manager: Manager) -> dict[str, Any]:
    """The keys the caller manages, active and revoked, newest first; never a token."""
    keys = [k for k in services(request).keys.list() if _may_manage(manager, k.project)]
    return {"items": [asdict(k) for k in keys]}


@router.delete("/{key_id}", status_code=204, response_class=Response)
def revoke_key(request: Request, key_id: str, manager: Manager) -> Response:
    """Revoke a key: every server on this metadata DB refuses it within about a second."""
    svc = services(request)
    keys = svc.keys
    key: ApiKey | None = keys.get(key_id)
    # Another project's key is "not found" to a project admin: its id tells them nothing.
    if key is None or not _may_manage(manager, key.project):
        raise NotFound(f"no active key {key_id!r}; see GET /api/v1/keys")
    with audited(request, "key.revoke", f"key {key_id}", key.project) as change:
        if not keys.revoke(key_id):
            raise NotFound(f"no active key {key_id!r}; see GET /api/v1/keys")
        change.before, change.after = asdict(key), asdict(keys.get(key_id) or key)
    return Response(status_code=204)
