"""Project API keys and the admin token: who a request acts for.

Keys are random tokens shown once; only their SHA-256 is stored. A request names its key
with `Authorization: Bearer <key>` (an OTLP exporter header works), or `X-API-Key`.
Each key has one project and a role in it (`_roles.Role`); the server's admin token
(`auth.admin_token`, compared in constant time) manages every project's keys and reads no
project's data. What a route needs of them is decided in `_access`.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from watchkeeper.errors import AuthError, ValidationError
from watchkeeper.server._roles import MIGRATED_KEY_ROLE, Principal, Role
from watchkeeper.store.meta import METADATA, MetaStore, added_column

KEY_PREFIX = "wk_"
HAS_KEYS_TTL_S = 2.0
#: How long a key lookup is trusted before the metadata DB is asked again.
KEY_CACHE_TTL_S = 1.0
_CACHE_MAX = 10_000
#: A refused credential is logged at most this often; every refusal is counted.
REFUSAL_LOG_EVERY_S = 60.0
REFUSAL_REASONS = ("missing", "malformed", "unknown", "forbidden", "session", "csrf")

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
    # Added with roles. Keys stored before get MIGRATED_KEY_ROLE (editor): what they could
    # already do, so an upgrade breaks no app or dashboard and grants nothing new.
    added_column(
        sa.Column("role", sa.String(16), nullable=False, server_default=MIGRATED_KEY_ROLE.value)
    ),
)

#: What `ApiKey` is read from, in its fields' order.
_KEY_COLUMNS = (
    api_keys.c.key_id,
    api_keys.c.project,
    api_keys.c.name,
    api_keys.c.role,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)
#: The admin token as a principal: every project's keys, no project's data.
ADMIN_TOKEN = Principal("the admin token", keys_admin=True)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    project: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None


class _Cached(NamedTuple):
    read_at: float
    principal: Principal


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
        # Its SHA-256: compared digest to digest, the time taken tells nothing of its length.
        self._admin = hashlib.sha256(admin_token.encode()).digest() if admin_token else None
        self._clock = clock
        self._lock = threading.Lock()
        # key hash -> when it was read, who it names; hits only, so new keys work at once
        self._cache: dict[str, _Cached] = {}
        self._has_keys: tuple[float, bool] = (float("-inf"), False)
        self._latched = required is True
        self._also: Callable[[], bool] = lambda: False

    def also_required_when(self, check: Callable[[], bool]) -> None:
        """Turn auth on (and latch it) when `check()` is true too: people have accounts.
        Asked at most every HAS_KEYS_TTL_S, like the keys."""
        last: list[Any] = [float("-inf"), False]

        def cached() -> bool:
            if self._clock() - last[0] >= HAS_KEYS_TTL_S:
                last[:] = [self._clock(), check()]
            return bool(last[1])

        self._also = cached

    def create(self, project: str, name: str = "", *, role: Role) -> tuple[ApiKey, str]:
        """Make a new key with `role` in `project`; return it with its secret token (shown
        only once)."""
        project = _valid_project(project)
        name = name.strip()
        if len(name) > 200:
            raise ValidationError("key name is too long: use at most 200 characters")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(secrets.token_hex(8), project, name, Role(role), time.time(), None)
        with self._meta.transaction() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key.key_id,
                    project=key.project,
                    name=key.name,
                    role=key.role.value,
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
                sa.select(*_KEY_COLUMNS).order_by(api_keys.c.created_at.desc())
            ).all()
        return [_key(row) for row in rows]

    def get(self, key_id: str) -> ApiKey | None:
        """One key by its id, revoked or not; None when there is none (read in the
        transaction open in this context, if any: a change sees what it wrote)."""
        with self._meta.transaction() as conn:
            row = conn.execute(
                sa.select(*_KEY_COLUMNS).where(api_keys.c.key_id == key_id)
            ).one_or_none()
        return None if row is None else _key(row)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; True when it existed and was active."""
        with self._meta.transaction() as conn:
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
            self._latched = self._admin is not None or self.has_keys() or self._also()
        return self._latched

    def is_admin(self, token: str) -> bool:
        """True when `token` is the configured admin token (constant-time comparison of
        their SHA-256 digests, whatever the length of `token`)."""
        if self._admin is None:
            return False
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(digest, self._admin)

    def principal_for(self, token: str) -> Principal | None:
        """Who an active key names (its project and role), or None."""
        digest = _hash(token)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached.read_at < KEY_CACHE_TTL_S:
            return cached.principal
        # Looked up by its SHA-256, never compared as a secret: how long an index lookup
        # takes can tell about the digest of a guess, which says nothing of a key's token.
        with self._meta.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys.c.key_id, api_keys.c.project, api_keys.c.role).where(
                    api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
                )
            ).one_or_none()
        with self._lock:
            if row is None:
                self._cache.pop(digest, None)
                return None
            principal = Principal(f"key {row.key_id}", {row.project: Role(row.role)})
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = _Cached(now, principal)
        return principal

    def identify(
        self, authorization: str | None, api_key: str | None, where: str = ""
    ) -> Principal | None:
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
            return ADMIN_TOKEN
        principal = self.principal_for(token)
        if principal is None:
            unknown = AuthError("unknown or revoked API key; create one: watchkeeper keys create")
            self._names_nobody("unknown", f"API key {fingerprint(token)}", unknown, where)
        return principal

    def _names_nobody(self, reason: str, who: str, exc: AuthError, where: str) -> None:
        """Refuse a credential that names nobody while auth is required; else ignore it."""
        if self.required:
            raise self.refuse(reason, who, exc, where)
        self.events.unneeded(who, str(exc), where)

    def refuse(self, reason: str, who: str, exc: AuthError, where: str) -> AuthError:
        """Count and (at most once a minute per `who`) log a refusal; return `exc` to raise."""
        self.events.refused(reason, who, str(exc), where)
        return exc


def _key(row: Sequence[Any]) -> ApiKey:
    key_id, project, name, role, created_at, revoked_at = row
    return ApiKey(key_id, project, name, Role(role), created_at, revoked_at)
