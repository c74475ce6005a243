"""An Alertmanager configuration from our channels: receivers, a route tree, inhibit rules.

Each channel writes its own receiver (`alertmanager` on its spec, in `alerting.channels`).
Alertmanager has no integration for Google Chat, and Teams Workflows only from 0.28
(`msteamsv2_configs`); such channels are listed as skipped instead of being mapped onto a
receiver that would post a payload the service does not read. Secrets are written as values:
Alertmanager does not expand environment variables, so keep the file private.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting._promql import Skipped, quote
from watchkeeper.alerting.channels import ChannelSpec
from watchkeeper.alerting.exports._inputs import MatcherInput, RouteInput

NULL_RECEIVER = "watchkeeper-null"
SEVERITIES = ("critical", "warning", "info")
#: Per severity: how long to wait for a group to fill, and how often to repeat.
TIMING = {
    "critical": {"group_wait": "10s", "repeat_interval": "1h"},
    "warning": {"group_wait": "30s", "repeat_interval": "4h"},
    "info": {"group_wait": "1m", "repeat_interval": "24h"},
}


@dataclass(frozen=True, slots=True)
class AlertmanagerExport:
    """The configuration as data, and the channels left out."""

    document: dict[str, Any]
    skipped: tuple[Skipped, ...]


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
        result = spec.alertmanager(version)
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
