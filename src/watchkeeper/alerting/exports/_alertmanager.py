"""An Alertmanager configuration from our channels: receivers, a route tree, inhibit rules.

Alertmanager has no integration for Google Chat, and Teams Workflows only from 0.28
(`msteamsv2_configs`); such channels are listed as skipped instead of being mapped onto a
receiver that would post a payload the service does not read. Secrets are written as values:
Alertmanager does not expand environment variables, so keep the file private.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting.channels import (
    ChannelSpec,
    EmailSpec,
    PagerDutySpec,
    SlackSpec,
    TeamsSpec,
    TelegramSpec,
    WebhookSpec,
)
from watchkeeper.alerting.exports._inputs import MatcherInput, RouteInput
from watchkeeper.alerting.exports._promql import Skipped, quote

NULL_RECEIVER = "watchkeeper-null"
SEVERITIES = ("critical", "warning", "info")
#: Per severity: how long to wait for a group to fill, and how often to repeat.
TIMING = {
    "critical": {"group_wait": "10s", "repeat_interval": "1h"},
    "warning": {"group_wait": "30s", "repeat_interval": "4h"},
    "info": {"group_wait": "1m", "repeat_interval": "24h"},
}
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


@dataclass(frozen=True, slots=True)
class AlertmanagerExport:
    """The configuration as data, and the channels left out."""

    document: dict[str, Any]
    skipped: tuple[Skipped, ...]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def receiver_config(spec: ChannelSpec, version: str) -> tuple[str, dict[str, Any]] | str:
    """(`*_configs` key, one config) for a channel, or why Alertmanager cannot send to it."""
    resolved = spec.send_resolved
    match spec:
        case SlackSpec():
            cfg: dict[str, Any] = {"api_url": spec.webhook_url.get_secret_value()}
            if spec.channel:
                cfg["channel"] = spec.channel
            cfg.update({"send_resolved": resolved, "title": TITLE, "text": TEXT})
            cfg.update(
                {"color": SLACK_COLOUR, "title_link": "{{ (index .Alerts 0).GeneratorURL }}"}
            )
            return "slack_configs", cfg
        case PagerDutySpec():
            return "pagerduty_configs", {
                "routing_key": spec.routing_key.get_secret_value(),
                "url": f"{spec.api_base.rstrip('/')}/v2/enqueue",
                "severity": "{{ .CommonLabels.severity }}",
                "send_resolved": resolved,
            }
        case WebhookSpec():
            # Alertmanager posts its own JSON (version 4), unsigned: the receiver must expect it.
            return "webhook_configs", {
                "url": spec.url.get_secret_value(),
                "send_resolved": resolved,
            }
        case EmailSpec():
            return "email_configs", _email(spec)
        case TelegramSpec():
            return _telegram(spec)
        case TeamsSpec():
            if _version(version) < (0, 28):
                return f"Teams Workflows needs Alertmanager 0.28 (msteamsv2_configs), not {version}"
            return "msteamsv2_configs", {
                "webhook_url": spec.webhook_url.get_secret_value(),
                "send_resolved": resolved,
                "title": TITLE,
                "text": TEXT,
            }
        case _:
            return f"Alertmanager has no integration for {spec.type} channels"


def _email(spec: EmailSpec) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "to": ", ".join(spec.to),
        "from": spec.sender,
        "smarthost": f"{spec.host}:{spec.port}",
        "require_tls": spec.security == "starttls",
        "send_resolved": spec.send_resolved,
    }
    if spec.username:
        cfg["auth_username"] = spec.username
        cfg["auth_password"] = spec.password.get_secret_value() if spec.password else ""
    if spec.ca_file:
        cfg["tls_config"] = {"ca_file": str(spec.ca_file)}
    return cfg


def _telegram(spec: TelegramSpec) -> tuple[str, dict[str, Any]] | str:
    try:
        chat_id = int(spec.chat_id)
    except ValueError:  # "@channelname"
        return "Alertmanager's telegram_configs takes a numeric chat_id only"
    return "telegram_configs", {
        "bot_token": spec.bot_token.get_secret_value(),
        "chat_id": chat_id,
        "api_url": spec.api_base,
        "parse_mode": "HTML",
        "message": TELEGRAM_MESSAGE,
        "send_resolved": spec.send_resolved,
    }


def _matcher(m: MatcherInput) -> str:
    return f"{m.name}{m.op}{quote(m.value)}"


def _fan_out(matchers: list[str], names: Sequence[str], known: set[str]) -> dict[str, Any] | None:
    # One node per policy; its children (no matchers, `continue`) send to every channel.
    children = [{"receiver": n, "continue": True} for n in names if n in known]
    if not children:
        return None
    return {"matchers": matchers, "receiver": NULL_RECEIVER, "routes": children}


def _policy_routes(
    routes: Sequence[RouteInput], own: Mapping[str, Sequence[str]], known: set[str]
) -> list[dict[str, Any]]:
    """The engine's policy in its order: a rule's own channels, then the configured routes."""
    out = []
    for selector, names in own.items():
        node = _fan_out([selector], names, known)
        if node is not None:
            out.append(node | {"continue": False})
    for route in routes:
        node = _fan_out([_matcher(m) for m in route.matchers], route.channels, known)
        if node is not None:
            out.append(node | {"continue": route.continue_})
    return out


def _severity_routes(receivers: Mapping[str, ChannelSpec]) -> list[dict[str, Any]]:
    """The default: by severity, to every channel that takes that severity."""
    out = []
    for severity in SEVERITIES:
        names = [name for name, spec in receivers.items() if severity in spec.severities]
        node = _fan_out([f'severity="{severity}"'], names, set(receivers))
        if node is not None:
            node.update(TIMING[severity])
            out.append(node)
    return out


def _route_tree(routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "receiver": NULL_RECEIVER,
        "group_by": ["alertname", "service", "sloth_service"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": routes,
    }


def render_alertmanager_config(
    channels: Sequence[ChannelSpec],
    version: str = "0.28",
    routes: Sequence[RouteInput] = (),
    own_channels: Mapping[str, Sequence[str]] | None = None,
    default_channels: Sequence[str] | None = None,
) -> AlertmanagerExport:
    """An `alertmanager.yml` for the channels, for Alertmanager `version` (e.g. '0.25').

    `own_channels` maps a matcher (e.g. `rule="error-spike"`) to the channels a rule names
    itself; `routes` are the engine's routes; `default_channels` (None: all) receive what
    nothing else routed, by severity.
    """
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    routed: dict[str, ChannelSpec] = {}
    skipped: list[Skipped] = []
    for spec in channels:
        result = receiver_config(spec, version)
        if isinstance(result, str):
            skipped.append(Skipped(spec.name, result))
            continue
        key, cfg = result
        receivers.append({"name": spec.name, key: [cfg]})
        routed[spec.name] = spec
    defaults = {
        n: s for n, s in routed.items() if default_channels is None or n in default_channels
    }
    tree = _policy_routes(routes, own_channels or {}, set(routed)) + _severity_routes(defaults)
    document = {
        "global": {"resolve_timeout": "5m"},
        "route": _route_tree(tree),
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity=~"warning|info"'],
                "equal": ["alertname", "service"],
            }
        ],
        "receivers": receivers,
    }
    return AlertmanagerExport(document, tuple(skipped))
