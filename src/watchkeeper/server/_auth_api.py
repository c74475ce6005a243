"""`GET /api/v1/auth`: whether this server requires an API key, asked before any key is sent.

The web UI reads it to know whether its key dialog asks for a key or only offers one. It
is open to everyone: whether a key is needed is what a client must learn first.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from watchkeeper.server._access import open_access
from watchkeeper.server._services import services

router = APIRouter(prefix="/api/v1", tags=["auth"], dependencies=[Depends(open_access)])


class AuthInfo(BaseModel):
    """What a client needs to know before it sends a key."""

    auth_required: bool


@router.get("/auth", summary="Whether this server requires an API key")
def auth_info(request: Request) -> AuthInfo:
    """`auth_required` is true once keys exist, an admin token is set or auth.required is."""
    return AuthInfo(auth_required=services(request).keys.required)
