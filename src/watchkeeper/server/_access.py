"""What each route needs, declared on the route itself as a FastAPI dependency.

Every route of the app declares its access with one of these (on the route or its router),
and a test walks every route with every role and fails on a route that declares none:

- `needs(role)`: a credential with `role` in the request's project; the value is that
  project. 401 without a valid credential, 403 naming the role when it lacks it.
- `manages_keys`: the admin token, or a key with the admin role (for its own project's
  keys); the value is the principal.
- `open_access`: anyone; no credential is looked at (health, the auth probe, docs, the UI).
- `optional_credential`: anyone, but a credential that is sent must be valid; it may show
  more (`/metrics` shows a viewer its project's series).

While auth is off (no key, no admin token, `auth.required` not true; the server then listens
on loopback only) a request without a credential may do everything, for the project its
`X-Watchkeeper-Project` header or `?project=` names, or the default project. A request that
sends a valid key acts as that key, role included, whether auth is on or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext

from watchkeeper.errors import AuthError, Forbidden
from watchkeeper.server._roles import Principal, Role, authorize, forbidden
from watchkeeper.server._services import describe, services


@dataclass(frozen=True, slots=True)
class Need:
    """What a route declares it needs."""

    role: Role | None  # None: no role
    credential: Literal["required", "optional", "ignored"]
    admin_token: bool = False  # the server's admin token passes too (the keys API)
    server_admin: bool = False  # only the admin token or a server administrator (people)
    person: bool = False  # only a person signed in (a session), no key


#: dependency -> what it declares; `declared` reads a route's from here.
_DECLARED: dict[Callable[..., Any], Need] = {}


def _declares(need: Need) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(dependency: Callable[..., Any]) -> Callable[..., Any]:
        _DECLARED[dependency] = need
        return dependency

    return register


def _principal(request: Request) -> Principal | None:
    """Who the request's credential names (AuthError for a bad one while auth is on): its
    API key, else its session cookie (a person signed in; CSRF checked, see _sessions)."""
    headers = request.headers
    svc = services(request)
    principal: Principal | None = None
    if "authorization" not in headers and "x-api-key" not in headers and svc.signin is not None:
        token = svc.signin.token(request)
        if token:
            principal = svc.signin.principal(request, token, describe(request))
            request.state.principal = principal  # who the audit log names
            return principal
    principal = svc.keys.identify(
        headers.get("authorization"), headers.get("x-api-key"), where=describe(request)
    )
    request.state.principal = principal  # who the audit log names
    return principal


def _missing(request: Request, what: str) -> AuthError:
    missing = AuthError(
        f"missing API key: send 'Authorization: Bearer <key>' with {what} "
        "(create a key with: watchkeeper keys create --project NAME --role ROLE)"
    )
    return services(request).keys.refuse(
        "missing", "a request without a credential", missing, describe(request)
    )


def _refused(request: Request, principal: Principal, exc: Forbidden) -> AuthError:
    return services(request).keys.refuse("forbidden", principal.name, exc, describe(request))


def _requested_project(request: Request) -> str | None:
    return request.headers.get("x-watchkeeper-project") or request.query_params.get("project")


def project_with(request: Request, needed: Role) -> str:
    """The project this request acts for with the `needed` role; AuthError (401) without
    a valid credential while auth is on, Forbidden (403) without the role."""
    principal = _principal(request)
    if principal is None:
        svc = services(request)
        if svc.keys.required:
            raise _missing(request, f"the {needed.value} role")
        return _requested_project(request) or svc.config.auth.default_project
    try:
        return authorize(principal, needed, _requested_project(request))
    except Forbidden as exc:
        raise _refused(request, principal, exc) from None


def _needs(role: Role) -> Callable[[Request], str]:
    @_declares(Need(role, "required"))
    def dependency(request: Request) -> str:
        return project_with(request, role)

    dependency.__name__ = f"needs_{role.value}"
    return dependency


_NEEDS = {role: _needs(role) for role in Role}


def needs(role: Role) -> Callable[[Request], str]:
    """The dependency of a route that needs `role`: `Depends(needs(Role.VIEWER))`; its value
    is the project the request acts for."""
    return _NEEDS[role]


@dataclass(frozen=True, slots=True)
class Attempt:
    """An access check whose refusal the route answers in its own format (OTLP's)."""

    project: str | None
    error: AuthError | None

    def result(self) -> str:
        """The project; raises the check's AuthError or Forbidden when it failed."""
        if self.error is not None:
            raise self.error
        assert self.project is not None
        return self.project


@_declares(Need(Role.INGEST, "required"))
def attempt_ingest(request: Request) -> Attempt:
    """`needs(Role.INGEST)`, with a refusal handed to the route instead of raised."""
    try:
        return Attempt(project_with(request, Role.INGEST), None)
    except AuthError as exc:
        return Attempt(None, exc)


@_declares(Need(Role.ADMIN, "required", admin_token=True))
def manages_keys(request: Request) -> Principal | None:
    """The admin token or an admin key (which manages its own project's keys only); None
    while auth is off and no credential is sent (every key may be managed)."""
    principal = _principal(request)
    if principal is None:
        if services(request).keys.required:
            raise _missing(request, "the admin role, or the admin token")
        return None
    if principal.keys_admin or any(r.grants(Role.ADMIN) for r in principal.roles.values()):
        return principal
    refusal = forbidden(principal, Role.ADMIN, principal.acting_project(None))
    raise _refused(request, principal, refusal)


@_declares(Need(Role.ADMIN, "required", admin_token=True, server_admin=True))
def administers_server(request: Request) -> Principal | None:
    """The admin token or a server administrator (a person made with --admin): people's
    accounts are theirs to manage; None while auth is off and no credential is sent."""
    principal = _principal(request)
    if principal is None:
        if services(request).keys.required:
            raise _missing(request, "a server administrator's session, or the admin token")
        return None
    if principal.keys_admin:
        return principal
    refusal = Forbidden(
        f"this needs a server administrator (the admin token, or a person made with "
        f"'watchkeeper users create --admin'); {principal.name} is not one, and a project's "
        "admin role is not enough"
    )
    raise _refused(request, principal, refusal)


@_declares(Need(None, "required", person=True))
def a_person(request: Request) -> Principal:
    """A person signed in (their own password, their own session); 401 without a session,
    403 for a key or the admin token."""
    principal = _principal(request)
    if principal is None:
        raise _missing(request, "a session: sign in at /signin")
    if not principal.person:
        refusal = Forbidden(f"this needs a person signed in; {principal.name} is no person")
        raise _refused(request, principal, refusal)
    return principal


@_declares(Need(None, "ignored"))
def open_access() -> None:
    """Declares a route open to anyone: no credential is looked at."""


@_declares(Need(None, "optional"))
def optional_credential(request: Request) -> Principal | None:
    """Declares a route open to anyone; a credential sent must be valid. Its value is who
    the credential names, None without one."""
    return _principal(request)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def declared(route: APIRoute | RouteContext) -> set[Need]:
    """What a route declares it needs (empty: it declares nothing, which a test refuses).

    Give a `RouteContext` (`fastapi.routing.iter_route_contexts(app.routes)`) to include
    what the routers it was included through add.
    """
    dependant: Dependant = route.dependant
    return {_DECLARED[d.call] for d in _dependants(dependant) if d.call in _DECLARED}
