"""Single sign-on through OpenID Connect: the authorization code flow with PKCE.

Discovery (`<issuer>/.well-known/openid-configuration`, whose `issuer` must be ours), then
a redirect to the provider with `state`, `nonce` and an S256 code challenge; back on the
callback, the state must be one this server issued (single use, 10 minutes, bound to the
browser by a cookie), the code is exchanged with the verifier and the client's secret
(`authlib`), and the ID token is verified (`joserfc`): signature by a key of the provider's
JWKS (an asymmetric algorithm, never `none` or HMAC), issuer, audience (and `azp`), expiry,
issue time and nonce. Only then is the person known.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from watchkeeper.config import OidcConfig
from watchkeeper.errors import AuthError, ConfigError
from watchkeeper.store.meta import METADATA, MetaStore

#: A sign-in must come back from the provider within this.
PENDING_TTL_S = 600.0
#: Discovery and keys are asked again after this (and keys at once for an unknown `kid`).
METADATA_TTL_S = 3600.0
#: Clock skew allowed between us and the provider.
LEEWAY_S = 60
#: The keys are asked again for a token they cannot verify, at most this often.
REFRESH_EVERY_S = 30.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
STATE_COOKIE = "wk_oidc"
CALLBACK_PATH = "/api/v1/oidc/callback"

oidc_logins = sa.Table(
    "oidc_logins",
    METADATA,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("verifier", sa.String(200), nullable=False),
    sa.Column("next_path", sa.String(500), nullable=False),
    sa.Column("redirect_url", sa.String(500), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


class OidcError(AuthError):
    """Single sign-on failed; the message says why (never a token)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in: a stable subject and what to call them."""

    subject: str  # "<issuer>#<sub>"
    username: str
    display_name: str
    claims: Mapping[str, Any]


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def safe_next(path: str | None) -> str:
    """A path on this server to land on after sign-in (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path[:500]


class OidcClient:
    """One relying party: begins sign-ins and verifies how they come back."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
    ) -> None:
        if not config.client_id:
            raise ConfigError("oidc.client_id is empty: set the client id the provider gave you")
        self.config = config
        self._clock = clock
        self._timeout = timeout_s
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    # -- the provider ----------------------------------------------------------------------
    def _get(self, url: str, what: str) -> dict[str, Any]:
        try:
            r = httpx.get(url, timeout=self._timeout, follow_redirects=False)
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the identity provider's {what} could not be read ({exc})") from None
        if not isinstance(body, dict):
            raise OidcError(f"the identity provider's {what} is not a JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached); its issuer must be the configured one."""
        now = self._clock()
        if self._metadata is not None and now - self._metadata[0] < METADATA_TTL_S:
            return self._metadata[1]
        issuer = self.config.issuer.rstrip("/")
        doc = self._get(f"{issuer}/.well-known/openid-configuration", "discovery document")
        if doc.get("issuer") != self.config.issuer:
            raise OidcError(
                f"the discovery document names issuer {str(doc.get('issuer'))[:200]!r}, "
                f"not the configured {self.config.issuer!r}"
            )
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(needed), str):
                raise OidcError(f"the discovery document has no {needed}")
        self._metadata = (now, doc)
        return doc

    def keys(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys (cached; `refresh` asks again)."""
        now = self._clock()
        if self._keys is not None:
            age = now - self._keys[0]
            # A refresh at most every REFRESH_EVERY_S: forged tokens must not make us
            # hammer the provider.
            if age < (REFRESH_EVERY_S if refresh else METADATA_TTL_S):
                return self._keys[1]
        jwks = self._get(self.metadata()["jwks_uri"], "keys (JWKS)")
        try:
            keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcError(f"the identity provider's keys could not be read ({exc})") from None
        self._keys = (now, keys)
        return keys

    def _client(self, redirect_url: str) -> OAuth2Client:
        secret = self.config.client_secret
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=secret.get_secret_value() if secret else None,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=" ".join(self.config.scopes),
            redirect_uri=redirect_url,
            code_challenge_method="S256",
            timeout=self._timeout,
        )

    # -- the flow --------------------------------------------------------------------------
    def begin(self, meta: MetaStore, next_path: str | None, redirect_url: str) -> tuple[str, str]:
        """Start a sign-in: the provider's authorization URL, and the state to bind to the
        browser (a cookie) that the callback must bring back; the provider sends the
        browser back to `redirect_url` (which it must have registered)."""
        doc = self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        now = self._clock()
        with meta.engine.begin() as conn:
            conn.execute(oidc_logins.delete().where(oidc_logins.c.created_at < now - PENDING_TTL_S))
            conn.execute(oidc_logins.insert().values(
                state_hash=_hash(state), nonce=nonce, verifier=verifier,
                next_path=safe_next(next_path), redirect_url=redirect_url,
                created_at=now))  # fmt: skip
        with self._client(redirect_url) as client:
            url, _ = client.create_authorization_url(
                doc["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        return str(url), state

    def finish(
        self, meta: MetaStore, state: str, code: str, bound_state: str | None
    ) -> tuple[Identity, str]:
        """Complete a sign-in from the callback's `state` and `code`; `bound_state` is the
        browser's cookie. The person's identity and where to land; OidcError on any fault."""
        if not bound_state or not secrets.compare_digest(bound_state.encode(), state.encode()):
            raise OidcError("this sign-in was not started in this browser: start it again")
        with meta.engine.begin() as conn:
            row = conn.execute(
                sa.select(oidc_logins).where(oidc_logins.c.state_hash == _hash(state))
            ).one_or_none()
            conn.execute(oidc_logins.delete().where(oidc_logins.c.state_hash == _hash(state)))
        if row is None or self._clock() - row.created_at > PENDING_TTL_S:
            raise OidcError("this sign-in is unknown, used or too old: start it again")
        token = self._exchange(code, row.verifier, row.redirect_url)
        claims = self.verify(token, row.nonce)
        return self._identity(claims), row.next_path

    def _exchange(self, code: str, verifier: str, redirect_url: str) -> str:
        try:
            with self._client(redirect_url) as client:
                answer = client.fetch_token(
                    self.metadata()["token_endpoint"], grant_type="authorization_code",
                    code=code, code_verifier=verifier,
                )  # fmt: skip
        except Exception as exc:  # authlib raises its own OAuthError and httpx's errors
            raise OidcError(f"the identity provider refused the code ({_short(exc)})") from None
        id_token = answer.get("id_token") if isinstance(answer, Mapping) else None
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token (is 'openid' in the scopes?)")
        return id_token

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token whose signature, issuer, audience, times and nonce hold."""
        try:
            decoded = self._decode(id_token)
            claims = dict(decoded.claims)
            jwt.JWTClaimsRegistry(
                now=int(self._clock()), leeway=LEEWAY_S,
                iss={"essential": True, "value": self.config.issuer},
                sub={"essential": True},
                aud={"essential": True, "value": self.config.client_id},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)  # fmt: skip
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError(f"the ID token was refused ({_short(exc)})") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError(
                "the ID token was refused (it names other audiences, and no azp of ours)"
            )
        return claims

    def _decode(self, id_token: str) -> Any:
        try:
            return jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
        except JoseError:
            # The provider may have rotated its keys since we read them: once more, fresh.
            return jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        wanted = claims.get(self.config.username_claim) or claims.get("email") or claims["sub"]
        name = str(claims.get("name") or wanted)[:200]
        return Identity(f"{self.config.issuer}#{claims['sub']}", str(wanted), name, claims)

    def roles(self, claims: Mapping[str, Any]) -> dict[str, str | None]:
        """The role in each project that `grants` names, from the role claim (None: none)."""
        if not self.config.role_claim:
            return {}
        held = claims.get(self.config.role_claim)
        values = (
            {str(v) for v in held} if isinstance(held, list) else {str(held)} if held else set()
        )
        out: dict[str, str | None] = {g.project: None for g in self.config.grants}
        rank = ["ingest", "viewer", "editor", "admin"]
        for grant in self.config.grants:
            current = out[grant.project]
            if grant.value in values and (
                current is None or rank.index(grant.role) > rank.index(current)
            ):
                out[grant.project] = grant.role
        return out


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
