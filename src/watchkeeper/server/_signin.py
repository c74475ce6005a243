"""Signing people in and out, and who a session cookie names: the service behind the routes.

`SignIn` holds the people, their sessions, the sign-in throttle and (when configured) the
OpenID Connect client. `_access` asks it for the principal of a request that carries the
session cookie and no API key; the CSRF checks are made there, so every route's declaration
works for people as it does for keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter
from starlette.requests import Request
from starlette.responses import Response

from watchkeeper.config import Config
from watchkeeper.errors import AuthError, Forbidden
from watchkeeper.server._auth import KeyRing
from watchkeeper.server._login_throttle import Limits, LoginThrottle
from watchkeeper.server._oidc import CALLBACK_PATH, OidcClient
from watchkeeper.server._people import People, PeopleEvent, Person
from watchkeeper.server._roles import Principal
from watchkeeper.server._sessions import (
    COOKIE,
    SECURE_COOKIE,
    Session,
    Sessions,
    cross_site,
    csrf_problem,
)
from watchkeeper.store.meta import MetaStore

ENDED = (
    "your session has ended (signed out, expired, or the account was changed): sign in "
    "again at /signin"
)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session just started: the cookie's token (set once, never stored) and its record."""

    person: Person
    token: str
    session: Session


class Throttled(Exception):
    """A sign-in refused before it was checked: too many recent failures (429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "too many failed sign-ins for this account or from this address: "
            f"try again in {max(1, round(retry_after))} s"
        )
        self.retry_after = retry_after


class SignIn:
    """People, sessions, the throttle, and the session cookie's rules."""

    def __init__(
        self,
        config: Config,
        meta: MetaStore,
        keys: KeyRing,
        *,
        registry: CollectorRegistry | None = None,
        throttle: LoginThrottle | None = None,
        oidc: OidcClient | None = None,
    ) -> None:
        self.config = config
        self.meta = meta
        self.people = People(meta)
        self.sessions = Sessions(
            meta, idle_s=config.sessions.idle_s, absolute_s=config.sessions.absolute_s
        )
        limits = Limits(
            free=config.sessions.login_free_attempts,
            address_cap_s=config.sessions.login_address_cap_s,
            account_cap_s=config.sessions.login_account_cap_s,
        )
        self.throttle = throttle or LoginThrottle(limits)
        self.oidc = oidc  # when single sign-on is configured
        self._keys = keys
        self.logins = Counter(
            "watchkeeper_logins",
            "Sign-in attempts by method (password, sso) and result (success, failure, "
            "throttled: refused unchecked after too many failures)",
            ["method", "result"],
            registry=registry,
        )
        for method in ("password", "sso"):
            for result in ("success", "failure", "throttled"):
                self.logins.labels(method, result)

    @property
    def record(self) -> Callable[[Any, PeopleEvent], None]:
        """The audit seam (`_people.Recorder`); replace it on `self.people`."""
        return self.people.record

    # -- signing in and out ----------------------------------------------------------------
    def password(self, username: str, password: str, address: str, where: str) -> SignedIn:
        """Check a username and password; Throttled or AuthError (one message for every
        failure: it never says whether the account exists)."""
        account = username.strip().lower()[:64]
        wait = self.throttle.wait_s(account, address)
        if wait > 0:
            self.logins.labels("password", "throttled").inc()
            raise Throttled(wait)
        person = self.people.authenticate(username, password)
        if person is None:
            self.throttle.failed(account, address)
            self.logins.labels("password", "failure").inc()
            self._record("login_failed", f"username {account!r}", f"person {account}", where)
            raise AuthError("wrong username or password")
        self.throttle.succeeded(account)
        self.logins.labels("password", "success").inc()
        return self.start(person, address, where, "password")

    def start(self, person: Person, address: str, where: str, method: str) -> SignedIn:
        """A new session for `person`, recorded as a login."""
        self.sessions.prune()  # records of sessions over for a day
        token, session = self.sessions.start(person.person_id, address)
        self._record("login", f"person {person.username}", f"person {person.username}", where,
                     {"method": method})  # fmt: skip
        return SignedIn(person, token, session)

    def _record(
        self, action: str, actor: str, target: str, where: str, after: dict[str, Any] | None = None
    ) -> None:
        with self.people.transaction() as conn:
            self.people.record(conn, PeopleEvent(action, actor, target, where, None, after))

    def logout(self, token: str | None, who: str, where: str) -> bool:
        """End the session of a cookie token; True when it was live."""
        if not token or not self.sessions.end(token):
            return False
        self._record("logout", who, who, where)
        return True

    def change(self, username: str, *, actor: str, where: str = "", **changes: Any) -> Person:
        """`People.change`, ending the person's sessions in the same transaction when their
        password changes or they are disabled."""
        ends = changes.get("password") is not None or changes.get("disabled") is True
        also = self.sessions.end_all if ends else None
        return self.people.change(username, actor=actor, where=where, also=also, **changes)

    def change_own_password(
        self, person: Person, current: str, new: str, keep: str, address: str, where: str
    ) -> None:
        """A person's new password, given the current one (throttled like a sign-in); their
        other sessions end, the one of cookie token `keep` goes on."""
        wait = self.throttle.wait_s(person.username, address)
        if wait > 0:
            raise Throttled(wait)
        if self.people.authenticate(person.username, current) is None:
            self.throttle.failed(person.username, address)
            raise AuthError("the current password is wrong")
        actor = f"person {person.username}"
        self.people.change(
            person.username, password=new, actor=actor, where=where,
            also=lambda conn, pid: self.sessions.end_all(conn, pid, keep=keep),
        )  # fmt: skip

    # -- the cookie ------------------------------------------------------------------------
    def principal(self, request: Request, token: str, where: str) -> Principal | None:
        """Who the session cookie names; AuthError when it names no live session (while
        auth is required; otherwise it is ignored), Forbidden when a change fails CSRF."""
        session = self.sessions.find(token)
        person = self.people.by_id(session.person_id) if session is not None else None
        if session is None or person is None or person.disabled_at is not None:
            if not self._keys.required:
                return None
            raise self._keys.refuse("session", "a session cookie", AuthError(ENDED), where)
        principal = person.principal()
        problem = csrf_problem(request.method, request.headers, session, self.origins(request))
        if problem is not None:
            raise self._keys.refuse("csrf", principal.name, Forbidden(problem), where)
        return principal

    def session_of(self, request: Request) -> Session | None:
        """The live session of the request's cookie, None without one."""
        token = self.token(request)
        return self.sessions.find(token) if token else None

    def cookie_name(self, request: Request) -> str:
        """The session cookie's name for this request: `__Host-` prefixed when Secure."""
        return SECURE_COOKIE if self.secure(request) else COOKIE

    def token(self, request: Request) -> str | None:
        """The session token the request's cookie holds, None without one."""
        return request.cookies.get(self.cookie_name(request))

    def origins(self, request: Request) -> set[str]:
        """The origins this server answers as: the request's own, and `public_url`'s."""
        own = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"}
        public = urlsplit(self.config.server.public_url)
        if public.scheme and public.netloc:
            own.add(f"{public.scheme}://{public.netloc}")
        return own

    def cross_site(self, request: Request) -> str | None:
        """Why a request came from another site (login CSRF); None when it did not."""
        return cross_site(request.headers, self.origins(request))

    def secure(self, request: Request) -> bool:
        """Whether the session cookie is marked Secure for this request."""
        configured = self.config.sessions.secure_cookie
        if configured is not None:
            return configured
        return request.url.scheme == "https" or self.config.server.public_url.startswith("https://")

    def set_cookie(self, request: Request, response: Response, signed: SignedIn) -> None:
        """Put the session's token in an HttpOnly, SameSite=Lax cookie on `response`."""
        response.set_cookie(
            self.cookie_name(request), signed.token, path="/",
            max_age=int(self.config.sessions.absolute_s),
            httponly=True, samesite="lax", secure=self.secure(request),
        )  # fmt: skip

    def clear_cookie(self, request: Request, response: Response) -> None:
        """Tell the browser to drop the session cookie."""
        response.delete_cookie(
            self.cookie_name(request),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )


def build_signin(
    config: Config, meta: MetaStore, keys: KeyRing, registry: CollectorRegistry | None = None
) -> SignIn:
    """The sign-in service of one server process; auth turns on once a person has an
    account (as with the first key), and single sign-on when `oidc.issuer` is set."""
    oidc = OidcClient(config.oidc) if config.oidc.enabled else None
    signin = SignIn(config, meta, keys, registry=registry, oidc=oidc)
    keys.also_required_when(signin.people.any_active)
    return signin


def redirect_url(config: Config, request: Request) -> str:
    """Where the identity provider sends people back after they signed in: configured, or
    under `server.public_url`, or this request's own base URL (the provider refuses any
    URL it has not registered, so a forged Host header gains nothing)."""
    if config.oidc.redirect_url:
        return config.oidc.redirect_url
    base = config.server.public_url or str(request.base_url)
    return f"{base.rstrip('/')}{CALLBACK_PATH}"
