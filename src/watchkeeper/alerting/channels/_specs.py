"""Channel specifications: one validated pydantic model per channel type.

Specs come from the `alerting.channels` list of the config file or from the API. Any string may
reference the environment as `${NAME}`, or be sealed with the server key (`wkenc:v1:...`, see
`watchkeeper.vault`), so secrets (webhook URLs, tokens, passwords) stay out of the file in
clear; references are expanded and sealed values opened before validation, and secrets are
`SecretStr` so they never show in a repr. `secret_values` lists a spec's secrets for the
server's `Redactor`, which keeps them out of logs and stored errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator
from pydantic import ValidationError as PydanticValidationError

from watchkeeper import errors
from watchkeeper.alerting._notification import Severity
from watchkeeper.vault import open_sealed

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ALL_SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    severities: tuple[Severity, ...] = ALL_SEVERITIES  # which alerts this channel receives
    send_resolved: bool = True
    timeout_s: float = Field(10.0, gt=0, le=120)


def _check_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError("must be an http:// or https:// URL")
    return value


class _UrlChecks(_Spec):
    # Every URL-like field of every spec; a typo is a config error, not a delivery to retry.
    @field_validator("url", "webhook_url", "api_base", check_fields=False)
    @classmethod
    def _url(cls, value: SecretStr | str) -> SecretStr | str:
        _check_url(value.get_secret_value() if isinstance(value, SecretStr) else value)
        return value


class WebhookSpec(_UrlChecks):
    """Generic webhook: our JSON body, HMAC-signed when `secret` is set."""

    type: Literal["webhook"] = "webhook"
    url: SecretStr
    secret: SecretStr | None = None
    headers: dict[str, str] = {}


class SlackSpec(_UrlChecks):
    """Slack incoming webhook."""

    type: Literal["slack"] = "slack"
    webhook_url: SecretStr
    channel: str | None = None  # only legacy webhooks honour an override


class TelegramSpec(_UrlChecks):
    """Telegram Bot API sendMessage."""

    type: Literal["telegram"] = "telegram"
    bot_token: SecretStr
    chat_id: int | str  # numeric id (YAML reads it as a number) or "@channelname"
    message_thread_id: int | None = None  # forum topic
    api_base: str = "https://api.telegram.org"
    disable_notification: bool = False


class PagerDutySpec(_UrlChecks):
    """PagerDuty Events API v2."""

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: SecretStr
    api_base: str = "https://events.pagerduty.com"
    source: str = "watchkeeper"
    component: str | None = None
    group: str | None = None


class GoogleChatSpec(_UrlChecks):
    """Google Chat incoming webhook, one thread per alert."""

    type: Literal["google_chat"] = "google_chat"
    webhook_url: SecretStr
    cards: bool = True  # cardsV2 message; False sends formatted text only


class TeamsSpec(_UrlChecks):
    """Microsoft Teams via a Workflows (Power Automate) webhook, as an Adaptive Card."""

    type: Literal["teams"] = "teams"
    webhook_url: SecretStr


class EmailSpec(_Spec):
    """E-mail over SMTP, multipart text and HTML."""

    type: Literal["email"] = "email"
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    to: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: Path | None = None  # extra CA to trust (a private or self-signed server cert)
    subject_prefix: str = "[Watchkeeper]"


class AlertmanagerSpec(_UrlChecks):
    """Prometheus Alertmanager `POST /api/v2/alerts`."""

    type: Literal["alertmanager"] = "alertmanager"
    url: str  # base URL, e.g. http://alertmanager:9093
    username: str | None = None
    password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    # A firing alert without endsAt is resolved by Alertmanager after its resolve_timeout
    # (5m by default), while the engine re-sends a firing alert only every repeat_interval
    # (4h by default): so a firing alert says it lasts this long, longer than any usual
    # repeat interval; the engine's resolve ends it earlier. None: leave it to resolve_timeout.
    firing_ttl_s: float | None = Field(24 * 3600.0, gt=0)
    extra_labels: dict[str, str] = {}


ChannelSpec = Annotated[
    WebhookSpec
    | SlackSpec
    | TelegramSpec
    | PagerDutySpec
    | GoogleChatSpec
    | TeamsSpec
    | EmailSpec
    | AlertmanagerSpec,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)
CHANNEL_TYPES = (
    "webhook",
    "slack",
    "telegram",
    "pagerduty",
    "google_chat",
    "teams",
    "email",
    "alertmanager",
)


def expand_env(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Replace every `${NAME}` in the strings of a nested structure with env[NAME]."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in env:
                raise errors.ValidationError(
                    f"{where or 'channel'}: environment variable {var} is not set "
                    f"(referenced as ${{{var}}}); export it or write the value in the file"
                )
            return env[var]

        return _ENV_REF.sub(lookup, value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, env, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [expand_env(v, env, where) for v in value]
    return value


def parse_channel_spec(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> ChannelSpec:
    """Validate one channel spec (after expanding `${ENV}` references)."""
    env = os.environ if env is None else env
    where = f"channel {data.get('name', '?')!s}"
    expanded = open_sealed(expand_env(dict(data), env, where), env, where)
    try:
        return _ADAPTER.validate_python(expanded)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        kinds = ", ".join(CHANNEL_TYPES)
        raise errors.ValidationError(f"{where}: {problems} (types: {kinds})") from None


def parse_channel_specs(
    items: Sequence[Mapping[str, Any]], env: Mapping[str, str] | None = None
) -> list[ChannelSpec]:
    """Validate a list of channel specs; names must be unique."""
    specs = [parse_channel_spec(item, env) for item in items]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise errors.ValidationError(f"channel {spec.name}: two channels share this name")
        seen.add(spec.name)
    return specs


def secret_fields(spec: ChannelSpec) -> list[str]:
    """The names of a spec's secret fields that are set (`SecretStr` ones)."""
    return [n for n in type(spec).model_fields if isinstance(getattr(spec, n), SecretStr)]


def secret_values(spec: ChannelSpec) -> list[str]:
    """Every secret a spec holds, in clear: its `SecretStr` fields, a webhook's header values
    (an Authorization header), the password in an Alertmanager URL."""
    out = [getattr(spec, n).get_secret_value() for n in secret_fields(spec)]
    if isinstance(spec, WebhookSpec):
        out += spec.headers.values()
    if isinstance(spec, AlertmanagerSpec):
        out.append(urlsplit(spec.url).password or "")
    return [v for v in out if v]
