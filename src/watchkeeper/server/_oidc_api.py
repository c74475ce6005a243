"""Single sign-on routes: `GET /api/v1/oidc/login` sends a browser to the identity provider,
`GET /api/v1/oidc/callback` brings it back signed in (see `_oidc` for what is checked).

A person signing in for the first time gets an account named after the provider's
`username_claim` (a local account of that name is never taken over: the sign-in is refused),
with no role until an admin grants one, or the roles `oidc.grants` maps from the role claim.
A failure lands on the sign-in page with the reason; it never signs anyone in.
"""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import NotFound, ValidationError
from watchkeeper.server._access import open_access
from watchkeeper.server._oidc import STATE_COOKIE, Identity, OidcClient, OidcError
from watchkeeper.server._people import Person, valid_username
from watchkeeper.server._roles import Role
from watchkeeper.server._services import describe, services
from watchkeeper.server._signin import SignIn, redirect_url

router = APIRouter(prefix="/api/v1/oidc", tags=["single sign-on"],
                   dependencies=[Depends(open_access)])  # fmt: skip
ACTOR = "single sign-on"
_COOKIE_PATH = "/api/v1/oidc"
Landing = Annotated[str | None, Query(alias="next", max_length=500)]


def _configured(request: Request) -> tuple[SignIn, OidcClient]:
    signin = services(request).signin
    if signin is None or signin.oidc is None:
        raise NotFound("single sign-on is not configured on this server (see oidc.issuer)")
    return signin, signin.oidc


@router.get("/login", status_code=302, response_class=RedirectResponse,
            summary="Sign in through the identity provider")  # fmt: skip
async def oidc_login(request: Request, landing: Landing = None) -> RedirectResponse:
    """Redirect to the provider; `next` is the page to land on afterwards."""
    signin, oidc = _configured(request)
    back = redirect_url(signin.config, request)
    try:
        url, state = await run_in_threadpool(oidc.begin, signin.meta, landing, back)
    except OidcError as exc:  # the provider is down or misconfigured: say so on the page
        return _to_signin(exc)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(STATE_COOKIE, state, max_age=600, path=_COOKIE_PATH, httponly=True,
                        samesite="lax", secure=signin.secure(request))  # fmt: skip
    return response


@router.get("/callback", status_code=303, response_class=RedirectResponse,
            summary="Where the identity provider sends people back")  # fmt: skip
async def oidc_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> RedirectResponse:
    """Verify the sign-in and start a session; on any fault, the sign-in page says why."""
    signin, oidc = _configured(request)
    address = request.client.host if request.client else "unknown"
    try:
        if error:
            raise OidcError(f"the identity provider said: {(error_description or error)[:200]}")
        if not code or not state:
            raise OidcError("the identity provider sent no code or state")
        identity, landing = await run_in_threadpool(
            oidc.finish, signin.meta, state, code, request.cookies.get(STATE_COOKIE)
        )
        person = await run_in_threadpool(_person_for, signin, oidc, identity, describe(request))
    except (OidcError, ValidationError) as exc:
        signin.logins.labels("sso", "failure").inc()
        return _to_signin(exc)
    signin.logins.labels("sso", "success").inc()
    signed = await run_in_threadpool(signin.start, person, address, describe(request), "sso")
    response = RedirectResponse(landing, status_code=303)
    response.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH)
    signin.set_cookie(request, response, signed)
    return response


def _to_signin(exc: Exception) -> RedirectResponse:
    """The sign-in page, saying why single sign-on failed; the state cookie dropped."""
    response = RedirectResponse("/signin?" + urlencode({"error": str(exc)}), status_code=303)
    response.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH)
    return response


def _person_for(signin: SignIn, oidc: OidcClient, identity: Identity, where: str) -> Person:
    """The account of `identity`: found by subject, else made; its mapped roles set."""
    people = signin.people
    person = people.by_subject(identity.subject)
    if person is None:
        name = _username(identity)
        if people.get(name) is not None:
            raise OidcError(
                f"an account named {name!r} exists already and is not linked to this identity "
                "provider: ask an admin"
            )
        person = people.create(name, None, display_name=identity.display_name,
                               subject=identity.subject, actor=ACTOR, where=where)  # fmt: skip
    if person.disabled_at is not None:
        raise OidcError("this account is disabled: ask an admin")
    for project, role in oidc.roles(identity.claims).items():
        people.set_role(person.username, project, Role(role) if role else None, actor=ACTOR,
                        where=where)  # fmt: skip
    found = people.by_id(person.person_id)
    assert found is not None
    return found


def _username(identity: Identity) -> str:
    try:
        return valid_username(identity.username)
    except ValidationError:
        return "sso-" + hashlib.sha256(identity.subject.encode()).hexdigest()[:12]
