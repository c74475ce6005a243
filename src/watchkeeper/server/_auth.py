"""Project API keys: created by `watchkeeper keys create`, checked on ingest and API calls.

Keys are random tokens shown once; only their SHA-256 is stored. A request names its key
with `Authorization: Bearer <key>` (an OTLP exporter header works), or `X-API-Key`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from watchkeeper.errors import AuthError, ValidationError
from watchkeeper.store.meta import METADATA, MetaStore

KEY_PREFIX = "wk_"
HAS_KEYS_TTL_S = 2.0

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


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    project: str
    name: str
    created_at: float
    revoked_at: float | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _valid_project(project: str) -> str:
    project = project.strip()
    if not project or len(project) > 200 or not all(c.isalnum() or c in "-_." for c in project):
        raise ValidationError(
            f"project name {project!r} is invalid: use 1-200 letters, digits, '-', '_' or '.'"
        )
    return project


class KeyRing:
    """Creates, lists, revokes and checks API keys; caches lookups for the hot path."""

    def __init__(self, meta: MetaStore, required: bool | None = None) -> None:
        self._meta = meta
        self._required = required
        self._cache: dict[str, str] = {}  # token -> project; hits only, so new keys work
        self._has_keys: tuple[float, bool] = (0.0, False)

    def create(self, project: str, name: str = "") -> tuple[ApiKey, str]:
        """Make a new key for `project`; return it with the secret token (shown only once)."""
        project = _valid_project(project)
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
        self._cache.clear()
        self._has_keys = (0.0, False)

    def has_keys(self) -> bool:
        """True when at least one active key exists (re-read at most every few seconds)."""
        checked, answer = self._has_keys
        if time.monotonic() - checked < HAS_KEYS_TTL_S:
            return answer
        with self._meta.engine.connect() as conn:
            n = conn.execute(
                sa.select(sa.func.count()).where(api_keys.c.revoked_at.is_(None))
            ).scalar_one()
        self._has_keys = (time.monotonic(), bool(n))
        return bool(n)

    @property
    def required(self) -> bool:
        """Whether requests must carry a key (config, else: as soon as one key exists)."""
        return self.has_keys() if self._required is None else self._required

    def project_for(self, token: str) -> str | None:
        """The project of an active key, or None."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        with self._meta.engine.connect() as conn:
            project = conn.execute(
                sa.select(api_keys.c.project).where(
                    api_keys.c.key_hash == _hash(token), api_keys.c.revoked_at.is_(None)
                )
            ).scalar_one_or_none()
        if project is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = project
        return project

    def authenticate(self, authorization: str | None, api_key: str | None, default: str) -> str:
        """The project a request acts for; raise AuthError when a key is needed and wrong."""
        token = api_key
        if authorization:
            scheme, _, value = authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        if token:
            project = self.project_for(token)
            if project is None:
                raise AuthError("unknown or revoked API key; create one: watchkeeper keys create")
            return project
        if self.required:
            raise AuthError(
                "missing API key: send 'Authorization: Bearer <key>' "
                "(create one with: watchkeeper keys create --project NAME)"
            )
        return default
