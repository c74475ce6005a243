"""The keys API: create, list and revoke project API keys over HTTP.

Every route needs the admin token (`auth.admin_token`) while auth is on, and answers 401
without a credential or with a wrong one, 403 with a project key. With auth off the server
listens on loopback only, and the routes are open like the rest of the API. A new key's
token is in the creation answer only; it is never stored or shown again.
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
from watchkeeper.server._query_api import _first_error
from watchkeeper.server._services import describe, services


def require_admin(request: Request) -> None:
    """FastAPI dependency: the caller may manage keys (raises AuthError or Forbidden)."""
    services(request).keys.authorize_admin(
        request.headers.get("authorization"),
        request.headers.get("x-api-key"),
        where=describe(request),
    )


router = APIRouter(prefix="/api/v1/keys", tags=["keys"], dependencies=[Depends(require_admin)])


class KeyIn(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")

    project: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(max_length=200)] = ""


class KeyOut(BaseModel):
    """A stored key, without its secret (times in unix seconds)."""

    key_id: str
    project: str
    name: str
    created_at: float
    revoked_at: float | None


class KeyCreated(KeyOut):
    """A new key and its secret token, shown this once."""

    token: str


class Keys(BaseModel):
    """Every key, newest first."""

    items: list[KeyOut]


_KEY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": KeyIn.model_json_schema()}},
    }
}


@router.post("", status_code=201, response_model=KeyCreated, openapi_extra=_KEY_BODY)
async def create_key(request: Request) -> dict[str, Any]:
    """Create a key for a project; the answer holds its token, which is not shown again."""
    # The body is read here, after require_admin: a stranger learns nothing from a 400.
    try:
        body = KeyIn.model_validate(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, pydantic.ValidationError) as exc:
        raise ValidationError(f"invalid key: {_first_error(exc)}") from None
    key, token = await run_in_threadpool(services(request).keys.create, body.project, body.name)
    return {**asdict(key), "token": token}


@router.get("", response_model=Keys)
def list_keys(request: Request) -> dict[str, Any]:
    """Every key, active and revoked, newest first; never a token."""
    return {"items": [asdict(k) for k in services(request).keys.list()]}


@router.delete("/{key_id}", status_code=204, response_class=Response)
def revoke_key(request: Request, key_id: str) -> Response:
    """Revoke a key: every server on this metadata DB refuses it within about a second."""
    if not services(request).keys.revoke(key_id):
        raise NotFound(f"no active key {key_id!r}; see GET /api/v1/keys")
    return Response(status_code=204)
