"""The people API: sign in and out, who is signed in, accounts, and project members.

- `GET /api/v1/session`: who the request's credential names, its roles, and for a session
  its CSRF token (another site cannot read it); also how one may sign in here.
- `POST /api/v1/session`: sign in with a username and password (a cookie comes back);
  rate-limited (429 + Retry-After), one message for every failure.
- `DELETE /api/v1/session`: sign out.
- `/api/v1/people`: accounts; the admin token or a server administrator only.
- `/api/v1/members`: who has which role in which project; the admin token, a server
  administrator, or an admin of the project (who sees and changes that project's only).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
import pydantic
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import Forbidden, NotFound, ValidationError
from watchkeeper.server._access import (
    a_person,
    administers_server,
    manages_keys,
    open_access,
    optional_credential,
)
from watchkeeper.server._people import PROJECT_PATTERN, Person, valid_project
from watchkeeper.server._query_api import _first_error
from watchkeeper.server._roles import Principal, Role, forbidden
from watchkeeper.server._services import describe, services
from watchkeeper.server._signin import SignIn, Throttled
from watchkeeper.server._units import ShownAsMs

router = APIRouter(prefix="/api/v1", tags=["people"])
Admin = Annotated[Principal | None, Depends(administers_server)]
Manager = Annotated[Principal | None, Depends(manages_keys)]
Anyone = Annotated[Principal | None, Depends(optional_credential)]
Someone = Annotated[Principal, Depends(a_person)]
_M = TypeVar("_M", bound=BaseModel)
#: How the command line and auth-off requests are named in the audit log.
NOBODY = "a request without a credential (auth off)"


class SignInMethods(BaseModel):
    """How a person may sign in to this server."""

    password: bool
    sso: bool
    sso_label: str


class SessionInfo(BaseModel):
    """Who the request's credential names (times in unix seconds)."""

    signed_in: bool
    kind: str | None = Field(default=None, description="person, key or admin token")
    name: str | None = None
    username: str | None = None
    admin: bool = False
    roles: dict[str, Role] = {}
    csrf_token: str | None = Field(default=None, description="send it as X-CSRF-Token on changes")
    expires_at: ShownAsMs | None = None
    sign_in: SignInMethods


class PasswordSignIn(BaseModel):
    """A username and password."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class PasswordChange(BaseModel):
    """A person's current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, Field(min_length=1, max_length=1000)]
    new_password: Annotated[str, Field(min_length=1, max_length=1000)]


class PersonIn(BaseModel):
    """An account to create."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]
    display_name: Annotated[str, Field(max_length=200)] = ""
    admin: bool = False


class PersonChange(BaseModel):
    """What to change of an account (absent: unchanged)."""

    model_config = ConfigDict(extra="forbid")

    password: Annotated[str | None, Field(max_length=1000)] = None
    disabled: bool | None = None
    admin: bool | None = None


class PersonOut(BaseModel):
    """An account, without its password (times in unix seconds)."""

    username: str
    display_name: str
    admin: bool
    sso: bool
    has_password: bool
    created_at: ShownAsMs
    disabled_at: ShownAsMs | None
    roles: dict[str, Role]


class PeopleOut(BaseModel):
    """Every account, by username."""

    items: list[PersonOut]


class MemberIn(BaseModel):
    """The role to give."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberOut(BaseModel):
    """A person's role in a project."""

    project: str
    username: str
    display_name: str
    role: Role
    disabled: bool


class MembersOut(BaseModel):
    """Memberships, by project."""

    items: list[MemberOut]


def _doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads `model` itself (after its access
    check); Role is a component of the document (the answers hold it)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}  # fmt: skip


def _signin(request: Request) -> SignIn:
    signin = services(request).signin
    assert signin is not None
    return signin


def _actor(principal: Principal | None) -> str:
    return principal.name if principal is not None else NOBODY


async def _body(request: Request, model: type[_M], what: str) -> _M:
    # Read after the access check: a stranger learns nothing from a 400.
    try:
        return model.model_validate(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, pydantic.ValidationError) as exc:
        raise ValidationError(f"invalid {what}: {_first_error(exc)}") from None


def _methods(signin: SignIn) -> SignInMethods:
    oidc = signin.config.oidc
    # Password sign-in is offered once an account exists (the UI asks for a key before).
    return SignInMethods(
        password=signin.people.any_active(), sso=oidc.enabled, sso_label=oidc.label
    )


def _person_out(p: Person) -> PersonOut:
    return PersonOut(username=p.username, display_name=p.display_name, admin=p.is_admin,
                     sso=p.sso, has_password=p.has_password, created_at=p.created_at,
                     disabled_at=p.disabled_at, roles=dict(p.roles))  # fmt: skip


# -- the session ---------------------------------------------------------------------------
@router.get("/session", response_model=SessionInfo, summary="Who is signed in")
def who(request: Request, principal: Anyone) -> SessionInfo:
    """The credential's principal and roles; a session's CSRF token and end."""
    signin = _signin(request)
    info = SessionInfo(signed_in=principal is not None, sign_in=_methods(signin))
    if principal is None:
        return info
    kind = "person" if principal.person else "admin token" if principal.keys_admin else "key"
    info.kind, info.name, info.admin = kind, principal.name, principal.keys_admin
    info.roles = dict(principal.roles)
    session = signin.session_of(request) if principal.person else None
    if session is not None:
        person = signin.people.by_id(session.person_id)
        info.username = person.username if person else None
        info.csrf_token, info.expires_at = session.csrf_token, session.expires_at
    return info


@router.post("/session", response_model=SessionInfo, dependencies=[Depends(open_access)],
             summary="Sign in with a username and password", openapi_extra=_doc(PasswordSignIn),
             responses={401: {"description": "wrong username or password"},
                        429: {"description": "too many failed sign-ins"}})  # fmt: skip
async def sign_in(request: Request) -> Response:
    """Sign in; the answer sets the session cookie and holds the CSRF token."""
    signin = _signin(request)
    problem = signin.cross_site(request)
    if problem:  # login CSRF: another site signing a browser in to its attacker's account
        raise Forbidden(problem)
    body = await _body(request, PasswordSignIn, "sign-in")
    address = request.client.host if request.client else "unknown"
    if previous := signin.token(request):  # a sign-in always starts a new session
        await run_in_threadpool(signin.sessions.end, previous)
    try:
        signed = await run_in_threadpool(
            signin.password, body.username, body.password, address, describe(request)
        )
    except Throttled as exc:
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return JSONResponse({"error": str(exc)}, status_code=429, headers=retry)
    person, session = signed.person, signed.session
    info = SessionInfo(
        signed_in=True,
        kind="person",
        name=f"person {person.username}",
        username=person.username,
        admin=person.is_admin,
        roles=dict(person.roles),
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
        sign_in=_methods(signin),
    )
    response = JSONResponse(info.model_dump(mode="json"))
    signin.set_cookie(request, response, signed)
    return response


@router.delete("/session", status_code=204, response_class=Response, summary="Sign out")
def sign_out(request: Request, principal: Anyone) -> Response:
    """End the session of the request's cookie (a key has none: nothing happens)."""
    signin = _signin(request)
    response = Response(status_code=204)
    if principal is not None and principal.person:
        signin.logout(signin.token(request), principal.name, describe(request))
        signin.clear_cookie(request, response)
    return response


@router.post("/session/password", status_code=204, response_class=Response,
             summary="Change your own password", openapi_extra=_doc(PasswordChange))  # fmt: skip
async def change_own_password(request: Request, principal: Someone) -> Response:
    """A person signed in sets a new password, giving the current one; their other
    sessions end, this one goes on."""
    body = await _body(request, PasswordChange, "password change")
    signin = _signin(request)
    session = signin.session_of(request)
    person = signin.people.by_id(session.person_id) if session is not None else None
    if person is None:
        raise Forbidden(f"this needs a person signed in; {principal.name} has no session")
    address = request.client.host if request.client else "unknown"
    try:
        await run_in_threadpool(
            signin.change_own_password, person, body.current_password, body.new_password,
            signin.token(request) or "", address, describe(request),
        )  # fmt: skip
    except Throttled as exc:
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return JSONResponse({"error": str(exc)}, status_code=429, headers=retry)
    return Response(status_code=204)


# -- accounts ------------------------------------------------------------------------------
@router.get("/people", response_model=PeopleOut, summary="Every account")
def list_people(request: Request, _admin: Admin) -> PeopleOut:
    """Every account with its roles; never a password hash."""
    return PeopleOut(items=[_person_out(p) for p in _signin(request).people.everyone()])


@router.post(
    "/people",
    status_code=201,
    response_model=PersonOut,
    summary="Create an account",
    openapi_extra=_doc(PersonIn),
)
async def create_person(request: Request, admin: Admin) -> PersonOut:
    """A local account (password rules: at least 12 characters, not the username)."""
    body = await _body(request, PersonIn, "account")
    people = _signin(request).people
    person = await run_in_threadpool(
        lambda: people.create(
            body.username,
            body.password,
            admin=body.admin,
            display_name=body.display_name,
            actor=_actor(admin),
            where=describe(request),
        )
    )
    return _person_out(person)


@router.patch(
    "/people/{username}",
    response_model=PersonOut,
    summary="Change an account",
    openapi_extra=_doc(PersonChange),
)
async def change_person(request: Request, username: str, admin: Admin) -> PersonOut:
    """Set a password, disable or enable, make or unmake a server administrator; a new
    password or disabling ends the person's sessions at once."""
    body = await _body(request, PersonChange, "change")
    signin = _signin(request)
    target = signin.people.get(username)
    if target is None:
        raise NotFound(f"no person named {username[:64]!r}; see GET /api/v1/people")
    itself = admin is not None and admin.name == f"person {target.username}"
    if itself and (body.disabled or body.admin is False):
        raise ValidationError("you cannot disable yourself or drop your own admin flag")
    changes = body.model_dump(exclude_none=True)
    changed = await run_in_threadpool(
        lambda: signin.change(username, actor=_actor(admin), where=describe(request), **changes)
    )
    return _person_out(changed)


# -- members -------------------------------------------------------------------------------
#: A project in a path: its shape published, checked by `valid_project` (a 400 naming it).
ProjectName = Annotated[str, Path(json_schema_extra={"pattern": PROJECT_PATTERN})]


def _may_manage(manager: Principal | None, project: str) -> bool:
    return manager is None or manager.may_manage_keys(project)


def _check_manages(request: Request, manager: Principal | None, project: str) -> None:
    if not _may_manage(manager, project):
        assert manager is not None
        refusal = forbidden(manager, Role.ADMIN, project)
        raise services(request).keys.refuse("forbidden", manager.name, refusal, describe(request))


@router.get("/members", response_model=MembersOut, summary="Who has which role")
def list_members(
    request: Request,
    manager: Manager,
    project: Annotated[str | None, Query(pattern=PROJECT_PATTERN)] = None,
) -> MembersOut:
    """Memberships of the projects the caller manages (or of `project`)."""
    if project is not None:
        _check_manages(request, manager, valid_project(project))
    rows = _signin(request).people.members(project)
    return MembersOut(items=[
        MemberOut(project=proj, username=p.username, display_name=p.display_name, role=role,
                  disabled=p.disabled_at is not None)
        for p, proj, role in rows if _may_manage(manager, proj)
    ])  # fmt: skip


@router.put("/members/{project}/{username}", response_model=MemberOut,
            summary="Give a person a role in a project", openapi_extra=_doc(MemberIn))  # fmt: skip
async def set_member(
    request: Request, project: ProjectName, username: str, manager: Manager
) -> MemberOut:
    """Add a person to a project with a role, or change their role there."""
    _check_manages(request, manager, valid_project(project))
    body = await _body(request, MemberIn, "membership")
    people = _signin(request).people
    await run_in_threadpool(
        people.set_role, username, project, body.role, actor=_actor(manager),
        where=describe(request),
    )  # fmt: skip
    person = people.get(username)
    assert person is not None
    return MemberOut(project=project, username=person.username, display_name=person.display_name,
                     role=body.role, disabled=person.disabled_at is not None)  # fmt: skip


@router.delete("/members/{project}/{username}", status_code=204, response_class=Response,
               summary="Remove a person from a project")  # fmt: skip
def remove_member(
    request: Request, project: ProjectName, username: str, manager: Manager
) -> Response:
    """Take a person's role in a project away; their next request no longer has it."""
    _check_manages(request, manager, valid_project(project))
    before = _signin(request).people.set_role(
        username, project, None, actor=_actor(manager), where=describe(request)
    )
    if before is None:
        raise NotFound(f"{username[:64]!r} is not a member of project {project}")
    return Response(status_code=204)
