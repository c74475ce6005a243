"""The configuration of who may use the server: API keys and the admin token, the sessions
of people signed in to the UI, and single sign-on (OpenID Connect)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from watchkeeper.config._section import Section as _Section

MIN_ADMIN_TOKEN_CHARS = 24


class AuthConfig(_Section):
    """API keys and the admin token; without auth the server listens on 127.0.0.1 only."""

    # None: required as soon as an admin token or one key exists, then until restart
    required: bool | None = None
    default_project: str = "default"
    # Manages keys over HTTP (/api/v1/keys); reads no project data. Best set through the
    # environment: WATCHKEEPER_AUTH__ADMIN_TOKEN.
    admin_token: SecretStr | None = None

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"use at least {MIN_ADMIN_TOKEN_CHARS} random characters "
                "(e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return v


class SessionsConfig(_Section):
    """Sessions of people signed in to the UI (see server/_sessions.py)."""

    # ended after this long without a request, and this long after sign-in at the latest
    idle_s: float = Field(default=8 * 3600.0, ge=60)
    absolute_s: float = Field(default=7 * 86_400.0, ge=300)
    # the cookie's Secure flag; None: set when the request came over https, or when
    # server.public_url is https (behind a proxy that ends TLS)
    secure_cookie: bool | None = None
    # Sign-in backoff (server/_login_throttle.py): failures free of delay, then a delay that
    # doubles from 1 s, up to a cap per client address and a short one per account.
    login_free_attempts: int = Field(default=5, ge=1, le=100)
    login_address_cap_s: float = Field(default=900.0, ge=1)
    login_account_cap_s: float = Field(default=60.0, ge=1, le=3600)


class OidcRoleGrant(_Section):
    """A value of the role claim that gives its holders a role in a project."""

    value: str = Field(min_length=1)
    project: str = Field(min_length=1, max_length=200)
    role: Literal["ingest", "viewer", "editor", "admin"]


class OidcConfig(_Section):
    """Single sign-on through an OpenID Connect provider; off while `issuer` is empty."""

    issuer: str = ""  # e.g. https://accounts.example.com (its /.well-known/openid-configuration)
    client_id: str = ""
    client_secret: SecretStr | None = None  # best set as WATCHKEEPER_OIDC__CLIENT_SECRET
    scopes: list[str] = ["openid", "email", "profile"]
    # where the provider sends people back; default <server.public_url>/api/v1/oidc/callback
    redirect_url: str = ""
    username_claim: str = "preferred_username"  # then email, then sub
    # How a person gets roles: none until an admin grants them (the default), or from a
    # claim (e.g. "groups") whose values `grants` map to a role in a project, set again at
    # every sign-in (for the projects the grants name; others stay as admins set them).
    role_claim: str = ""
    grants: list[OidcRoleGrant] = []
    label: str = "single sign-on"  # the sign-in button's text

    @property
    def enabled(self) -> bool:
        """True when single sign-on is configured."""
        return bool(self.issuer)
