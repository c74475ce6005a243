"""Project API keys and the admin token: who a request acts for.

Keys are random tokens shown once; only their SHA-256 is stored. A request names its key
with `Authorization: Bearer <key>` (an OTLP exporter header works), or `X-API-Key`.
Managing keys over HTTP needs the server's admin token (`auth.admin_token`), compared in
constant time; it is not a project key and reads no project's data through the query API.

Auth fails closed: once a `KeyRing` has seen auth required (by configuration, an admin
token, or an active key) it keeps requiring a key until the process restarts, even when the
last key is revoked. Key lookups are cached for at most `KEY_CACHE_TTL_S`, so a key revoked
by another process (the CLI, another replica on the same metadata DB) stops working within
that time plus one lookup.

While auth is not required, a credential that names nobody (an unknown key, a malformed
header) is ignored rather than refused: the request acts for the default project, and the
server warns once per credential. Refusals are counted in
`watchkeeper_auth_rejected_total{reason}` and logged at most once a minute per credential,
which is named by a short hash prefix (`sha256:1a2b3c4d`), never by its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from watchkeeper.errors import AuthError, ValidationError
from watchkeeper.store.meta import METADATA, MetaStore

KEY_PREFIX = "wk_"
HAS_KEYS_TTL_S = 2.0
#: How long a key lookup is trusted before the metadata DB is asked again.
KEY_CACHE_TTL_S = 1.0
_CACHE_MAX = 10_000
#: A refused credential is logged at most this often; every refusal is counted.
REFUSAL_LOG_EVERY_S = 60.0
REFUSAL_REASONS = ("missing", "malformed", "unknown", "forbidden")

log = logging.getLogger("watchkeeper.server.auth")

api_keys = sa.Table(
    "api_keys",
    METADATA,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)


class Forbidden(AuthError):
    """A valid credential that may not do this (sent back as 403; OTLP answers 401)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    project: str
    name: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request's credential names: a project key, or the admin token (project None)."""

    project: str | None

    @property
    def admin(self) -> bool:
        """True for the admin token."""
        return self.project is None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(secret: str) -> str:
    """How logs name a credential: a short prefix of its SHA-256, never the secret."""
    return "sha256:" + _hash(secret)[:8]


class AuthEvents:
    """What the server tells its operator about credentials.

    Refusals are counted by reason and logged at most once a minute per credential; a key
    sent to a server that requires none is accepted and warned about once per key. Both
    remember a bounded number of credentials.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._logged: dict[str, float] = {}  # who -> when its refusal was last logged
        self._warned: set[str] = set()
        self._rejected = Counter(
            "watchkeeper_auth_rejected",
            "Requests refused for their credential, by reason: missing, malformed, unknown "
            "(an unknown or revoked key), forbidden (a credential that may not do this)",
            ["reason"],
            registry=registry,
        )
        for reason in REFUSAL_REASONS:
            self._rejected.labels(reason)

    def refused(self, reason: str, who: str, message: str, where: str) -> None:
        """Count a refusal; log it unless `who` was logged in the last minute."""
        self._rejected.labels(reason).inc()
        now = self._clock()
        with self._lock:
            if now - self._logged.get(who, float("-inf")) < REFUSAL_LOG_EVERY_S:
                return
            if len(self._logged) >= _CACHE_MAX:
                self._logged = {
                    k: t for k, t in self._logged.items() if now - t < REFUSAL_LOG_EVERY_S
                }
            self._logged[who] = now
        log.warning(
            "refused %s%s: %s (refusals are counted in watchkeeper_auth_rejected_total; "
            "this one is logged again in a minute at the earliest)",
            who,
            f" on {where}" if where else "",
            message,
        )

    def unneeded(self, who: str, problem: str, where: str) -> None:
        """Warn, once per credential, that one was sent to a server that requires none."""
        with self._lock:
            if who in self._warned:
                return
            if len(self._warned) >= _CACHE_MAX:
                self._warned.clear()
            self._warned.add(who)
        log.warning(
            "accepted a request%s that sent %s, although this server requires no API key "
            "(%s): it acts for the default project. Drop the key from the sender, or create "
            "keys (watchkeeper keys create --project NAME) to require them",
            f" on {where}" if where else "",
            who,
            problem,
        )


def _valid_project(project: str) -> str:
    project = project.strip()
    if not project or len(project) > 200 or not all(c.isalnum() or c in "-_." for c in project):
        raise ValidationError(
            f"project name {project!r} is invalid: use 1-200 letters, digits, '-', '_' or '.'"
        )
    return project


def bearer_token(authorization: str | None, api_key: str | None) -> str | None:
    """The token a request carries, None without one; AuthError when it is malformed."""
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthError("malformed Authorization header: send 'Authorization: Bearer <key>'")
        return token
    if api_key is not None:
        if not api_key.strip():
            raise AuthError("empty X-API-Key header: send the key, or drop the header")
        return api_key.strip()
    return None


class KeyRing:
    """Creates, lists, revokes and checks API keys; caches lookups briefly for the hot path."""

    def __init__(
        self,
        meta: MetaStore,
        required: bool | None = None,
        admin_token: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._meta = meta
        self.events = AuthEvents(registry, clock)
        self._required = required
        self._admin = admin_token.encode() if admin_token else None
        self._clock = clock
        self._lock = threading.Lock()
        # key hash -> (when it was read, its project); hits only, so new keys work at once
        self._cache: dict[str, tuple[float, str]] = {}
        self._has_keys: tuple[float, bool] = (float("-inf"), False)
        self._latched = required is True

    def create(self, project: str, name: str = "") -> tuple[ApiKey, str]:
        """Make a new key for `project`; return it with the secret token (shown only once)."""
        project = _valid_project(project)
        name = name.strip()
        if len(name) > 200:
            raise ValidationError("key name is too long: use at most 200 characters")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(secrets.token_hex(8), project, name, time.time(), None)
        with self._meta.engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key.key_id,
                    project=key.project,
                    name=key.name,
                    key_hash=_hash(token),
                    created_at=key.created_at,
                )
            )
        self._forget()
        return key, token

    def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        with self._meta.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    api_keys.c.key_id,
                    api_keys.c.project,
                    api_keys.c.name,
                    api_keys.c.created_at,
                    api_keys.c.revoked_at,
                ).order_by(api_keys.c.created_at.desc())
            ).all()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; True when it existed and was active."""
        with self._meta.engine.begin() as conn:
            res = conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        self._forget()
        return bool(res.rowcount)

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._has_keys = (float("-inf"), False)

    def has_keys(self) -> bool:
        """True when at least one active key exists (re-read at most every few seconds)."""
        checked, answer = self._has_keys
        if self._clock() - checked < HAS_KEYS_TTL_S:
            return answer
        with self._meta.engine.connect() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).where(api_keys.c.revoked_at.is_(None))
            ).scalar_one()
        self._has_keys = (self._clock(), bool(n))
        return bool(n)

    @property
    def required(self) -> bool:
        """Whether requests must carry a credential.

        The configuration decides when it says; otherwise auth turns on with the admin token
        or the first active key, and stays on (fail closed) until the process restarts.
        """
        if self._required is not None:
            return self._required
        if not self._latched:
            self._latched = self._admin is not None or self.has_keys()
        return self._latched

    def is_admin(self, token: str) -> bool:
        """True when `token` is the configured admin token (constant-time comparison)."""
        return self._admin is not None and hmac.compare_digest(token.encode(), self._admin)

    def project_for(self, token: str) -> str | None:
        """The project of an active key, or None."""
        digest = _hash(token)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < KEY_CACHE_TTL_S:
            return cached[1]
        with self._meta.engine.connect() as conn:
            project = conn.execute(
                sa.select(api_keys.c.project).where(
                    api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
                )
            ).scalar_one_or_none()
        with self._lock:
            if project is None:
                self._cache.pop(digest, None)
            else:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[digest] = (now, project)
        return project

    def identify(
        self, authorization: str | None, api_key: str | None, where: str = ""
    ) -> Caller | None:
        """Who the request's credential names; None without one.

        A credential that names nobody raises AuthError while auth is required; otherwise it
        is ignored (None), with a warning the first time (`where` says which request).
        """
        try:
            token = bearer_token(authorization, api_key)
        except AuthError as malformed:
            raw = fingerprint(authorization if authorization is not None else api_key or "")
            self._names_nobody("malformed", f"a malformed credential {raw}", malformed, where)
            return None
        if token is None:
            return None
        if self.is_admin(token):
            return Caller(None)
        project = self.project_for(token)
        if project is None:
            unknown = AuthError("unknown or revoked API key; create one: watchkeeper keys create")
            self._names_nobody("unknown", f"API key {fingerprint(token)}", unknown, where)
            return None
        return Caller(project)

    def _names_nobody(self, reason: str, who: str, exc: AuthError, where: str) -> None:
        """Refuse a credential that names nobody while auth is required; else ignore it."""
        if self.required:
            raise self._refuse(reason, who, exc, where)
        self.events.unneeded(who, str(exc), where)

    def _refuse(self, reason: str, who: str, exc: AuthError, where: str) -> AuthError:
        self.events.refused(reason, who, str(exc), where)
        return exc

    def authenticate(
        self, authorization: str | None, api_key: str | None, default: str, where: str = ""
    ) -> str:
        """The project a request acts for; raise AuthError when a key is needed and wrong."""
        caller = self.identify(authorization, api_key, where)
        if caller is None:
            if self.required:
                missing = AuthError(
                    "missing API key: send 'Authorization: Bearer <key>' "
                    "(create one with: watchkeeper keys create --project NAME)"
                )
                raise self._refuse("missing", "a request without an API key", missing, where)
            return default
        if caller.project is None:
            admin = Forbidden("the admin token manages keys only; send a project's API key")
            raise self._refuse("forbidden", "the admin token", admin, where)
        return caller.project

    def authorize_admin(
        self, authorization: str | None, api_key: str | None, where: str = ""
    ) -> None:
        """Allow key management: the admin token, or no credential while auth is off."""
        caller = self.identify(authorization, api_key, where)
        if caller is None:
            if self.required:
                missing = AuthError(
                    "missing admin token: send 'Authorization: Bearer <admin token>' "
                    "(set auth.admin_token or WATCHKEEPER_AUTH__ADMIN_TOKEN), "
                    "or use: watchkeeper keys"
                )
                raise self._refuse("missing", "a request without the admin token", missing, where)
            return
        if not caller.admin:
            key = Forbidden("a project key cannot manage keys; send the admin token")
            raise self._refuse("forbidden", f"a key of project {caller.project}", key, where)
