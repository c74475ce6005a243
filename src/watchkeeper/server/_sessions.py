"""Sessions of people signed in: server-side records behind an HttpOnly, SameSite cookie.

The cookie holds a random token; the metadata DB holds only its SHA-256, so a copy of the
database opens no session. A session ends at logout, after `idle_s` without a request,
`absolute_s` after sign-in whatever happens, and at once (every replica: each request reads
the record) when its person is disabled or their password changes.

Every state-changing request made with the session cookie must carry the session's CSRF
token in `X-CSRF-Token` (the UI reads it from `GET /api/v1/session`; another site cannot),
and a browser's `Origin` / `Sec-Fetch-Site` must say it came from this site. Requests
authenticated with an API key (`Authorization`) send no cookie and are not subject to it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from watchkeeper.store.meta import METADATA, MetaStore

COOKIE = "wk_session"
#: Its name when it is Secure: browsers take a `__Host-` cookie only from this very host,
#: over https, for path /, so a sibling subdomain cannot plant one (session fixation).
SECURE_COOKIE = "__Host-wk_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: A session's last use is written at most this often (each request reads it, few write).
TOUCH_EVERY_S = 60.0

sessions = sa.Table(
    "sessions",
    METADATA,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(32), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),  # absolute
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("client", sa.String(200), nullable=False, default=""),
)


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: whose, its CSRF token, and when it ends at the latest."""

    person_id: str
    csrf_token: str
    created_at: float
    expires_at: float


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Starts, finds and ends sessions in the metadata DB."""

    def __init__(
        self,
        meta: MetaStore,
        *,
        idle_s: float,
        absolute_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._meta = meta
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._clock = clock

    def start(self, person_id: str, client: str = "") -> tuple[str, Session]:
        """A new session for `person_id`: its cookie token (never stored) and record."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(person_id, secrets.token_urlsafe(32), now, now + self.absolute_s)
        with self._meta.engine.begin() as conn:
            conn.execute(
                sessions.insert().values(
                    token_hash=_hash(token), person_id=person_id,
                    csrf_token=session.csrf_token, created_at=now, last_seen_at=now,
                    expires_at=session.expires_at, client=client[:200],
                )
            )  # fmt: skip
        return token, session

    def find(self, token: str) -> Session | None:
        """The live session of a cookie token; None when it is unknown, ended or expired."""
        now = self._clock()
        digest = _hash(token)
        with self._meta.engine.connect() as conn:
            row = conn.execute(
                sa.select(sessions).where(sessions.c.token_hash == digest)
            ).one_or_none()
        if row is None or row.ended_at is not None:
            return None
        if now >= row.expires_at or now - row.last_seen_at >= self.idle_s:
            self._end(sessions.c.token_hash == digest, now)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY_S:
            with self._meta.engine.begin() as conn:
                conn.execute(
                    sessions.update()
                    .where(sessions.c.token_hash == digest)
                    .values(last_seen_at=now)
                )
        return Session(row.person_id, row.csrf_token, row.created_at, row.expires_at)

    def end(self, token: str) -> bool:
        """End the session of a cookie token (logout); True when it was live."""
        return self._end(sessions.c.token_hash == _hash(token), self._clock()) > 0

    def end_all(self, conn: sa.Connection, person_id: str, keep: str | None = None) -> None:
        """End every session of a person (but the one of cookie token `keep`), inside the
        caller's transaction."""
        where = [sessions.c.person_id == person_id, sessions.c.ended_at.is_(None)]
        if keep is not None:
            where.append(sessions.c.token_hash != _hash(keep))
        conn.execute(sessions.update().where(*where).values(ended_at=self._clock()))

    def _end(self, where: sa.ColumnElement[bool], now: float) -> int:
        with self._meta.engine.begin() as conn:
            res = conn.execute(
                sessions.update().where(where, sessions.c.ended_at.is_(None)).values(ended_at=now)
            )
        return int(res.rowcount)

    def prune(self, older_than_s: float = 86_400.0) -> int:
        """Delete records of sessions ended or expired more than `older_than_s` ago."""
        cutoff = self._clock() - older_than_s
        with self._meta.engine.begin() as conn:
            res = conn.execute(
                sessions.delete().where(
                    (sessions.c.ended_at < cutoff) | (sessions.c.expires_at < cutoff)
                )
            )
        return int(res.rowcount)


def csrf_problem(
    method: str, headers: Mapping[str, str], session: Session, origins: Iterable[str]
) -> str | None:
    """Why a cookie-authenticated request fails the CSRF checks; None when it passes.

    Safe methods pass. Others need the session's token in `X-CSRF-Token`, and, when the
    browser sends them, an `Origin` among `origins` and a `Sec-Fetch-Site` of same-origin.
    """
    if method.upper() in SAFE_METHODS:
        return None
    site_problem = cross_site(headers, origins)
    if site_problem:
        return site_problem
    sent = headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        return (
            "missing or wrong CSRF token: a change made with the session cookie needs the "
            "X-CSRF-Token header from GET /api/v1/session"
        )
    return None


def cross_site(headers: Mapping[str, str], origins: Iterable[str]) -> str | None:
    """Why a browser's request came from another site (`Sec-Fetch-Site`, `Origin`); None
    when it did not, or when the client is no browser and sends neither."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"refused a cross-site request (Sec-Fetch-Site: {fetch_site[:20]})"
    origin = headers.get("origin")
    if origin is not None and origin.rstrip("/") not in {o.rstrip("/") for o in origins}:
        return "refused a request from another origin (Origin does not match this server)"
    return None
