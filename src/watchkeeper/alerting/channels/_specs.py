"""What every channel specification shares; each channel's own model is in its module.

Specs come from the `alerting.channels` list of the config file or from the API. Any string may
reference the environment as `${NAME}`, or be sealed with the server key (`wkenc:v1:...`, see
`watchkeeper.vault`), so secrets (webhook URLs, tokens, passwords) stay out of the file in
clear; references are expanded and sealed values opened before validation, and secrets are
`SecretStr` so they never show in a repr. `secret_values` lists a spec's secrets for the
server's `Redactor`, which keeps them out of logs and stored errors.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from watchkeeper import errors
from watchkeeper.alerting._notification import Channel, Severity

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ALL_SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


class Spec(BaseModel):
    """What every channel's spec has; a channel module subclasses it (or `UrlSpec`) with
    `type: Literal[...]`, its own fields, `build` and, where Alertmanager can send to it,
    `alertmanager`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How the type is named and explained where channel types are listed (API, UI, docs).
    label: ClassVar[str] = ""
    about: ClassVar[str] = ""

    type: str
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    severities: tuple[Severity, ...] = ALL_SEVERITIES  # which alerts this channel receives
    send_resolved: bool = True
    timeout_s: float = Field(10.0, gt=0, le=120)

    @abstractmethod
    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel this spec describes, sending through `http` (or its own per send)."""

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """(`*_configs` key, one config) of an Alertmanager receiver for this channel, or why
        Alertmanager `version` cannot send to it."""
        return f"Alertmanager has no integration for {self.type} channels"

    def extra_secrets(self) -> list[str]:
        """Secrets held outside the `SecretStr` fields (a header value, a URL's password)."""
        return []

    def masked(self) -> dict[str, Any]:
        """The spec as JSON data with every secret masked, those outside `SecretStr` too."""
        data: dict[str, Any] = _mask(self.model_dump(mode="json"), secret_values(self))
        return data

    def __repr_args__(self) -> Any:
        # repr and str (what a log line shows) mask a header value or a URL's password too.
        view = self.masked()
        for name, value in super().__repr_args__():
            yield name, value if isinstance(value, SecretStr) else view.get(str(name), value)


def _check_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError("must be an http:// or https:// URL")
    return value


class UrlSpec(Spec):
    # Every URL-like field of every spec; a typo is a config error, not a delivery to retry.
    @field_validator("url", "webhook_url", "api_base", check_fields=False)
    @classmethod
    def _url(cls, value: SecretStr | str) -> SecretStr | str:
        _check_url(value.get_secret_value() if isinstance(value, SecretStr) else value)
        return value


# Templates of the Alertmanager receivers that show text (Slack, Teams, Telegram).
TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})"
TEXT = (
    "{{ range .Alerts }}{{ .Annotations.summary }}"
    "{{ if .Annotations.value }} (value {{ .Annotations.value }}){{ end }}"
    "{{ if .Annotations.runbook_url }} runbook: {{ .Annotations.runbook_url }}{{ end }}\n"
    "{{ end }}"
)
SLACK_COLOUR = (
    '{{ if eq .Status "firing" }}{{ if eq .CommonLabels.severity "critical" }}danger'
    "{{ else }}warning{{ end }}{{ else }}good{{ end }}"
)
TELEGRAM_MESSAGE = (
    "<b>{{ .Status | toUpper }}</b> {{ .CommonLabels.alertname }}\n"
    "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}"
)


def version_of(text: str) -> tuple[int, ...]:
    """(major, minor) of a version like '0.28' or '0.27.1'."""
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


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


MASK = "**********"  # what pydantic shows for a SecretStr


def _mask(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    return value


def secret_fields(spec: Spec) -> list[str]:
    """The names of a spec's secret fields that are set (`SecretStr` ones)."""
    return [n for n in type(spec).model_fields if isinstance(getattr(spec, n), SecretStr)]


def secret_values(spec: Spec) -> list[str]:
    """Every secret a spec holds, in clear: its `SecretStr` fields, a webhook's header values
    (an Authorization header), the password in an Alertmanager URL."""
    out = [getattr(spec, n).get_secret_value() for n in secret_fields(spec)]
    return [v for v in [*out, *spec.extra_secrets()] if v]
