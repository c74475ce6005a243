"""PagerDuty Events API v2: `POST /v2/enqueue`, trigger and resolve with one dedup key.

The alert fingerprint is the `dedup_key`, so the resolve closes exactly the incident its
trigger opened, and re-sent triggers of a firing alert add to it instead of paging again.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import SecretStr

from watchkeeper.alerting._notification import Channel, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._specs import UrlSpec


class PagerDutySpec(UrlSpec):
    """PagerDuty Events API v2."""

    label = "PagerDuty"
    about = "PagerDuty Events API v2: trigger and resolve with a dedup key."

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: SecretStr
    api_base: str = "https://events.pagerduty.com"
    source: str = "watchkeeper"
    component: str | None = None
    group: str | None = None

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return PagerDutyChannel(self, http)

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """Alertmanager's receiver config for this channel."""
        return "pagerduty_configs", {
            "routing_key": self.routing_key.get_secret_value(),
            "url": f"{self.api_base.rstrip('/')}/v2/enqueue",
            "severity": "{{ .CommonLabels.severity }}",
            "send_resolved": self.send_resolved,
        }


SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
#: PagerDuty knows critical, error, warning and info.
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def _custom_details(n: Notification) -> dict[str, Any]:
    details: dict[str, Any] = {"rule_id": n.rule_id, "rule": n.rule_name, "status": n.status}
    details.update({label.lower(): value for label, value in _render.facts(n)})
    if n.description:
        details["description"] = n.description
    if n.body_markdown:
        details["body"] = n.body_markdown
    if n.trace_ids:
        details["example_traces"] = [t.url or t.text for t in _render.trace_links(n)]
    details.update({k: v for k, v in n.annotations.items() if k not in details})
    return details


def _links(n: Notification) -> list[dict[str, str]]:
    out = [{"href": link.url, "text": link.text} for link in _render.links(n)]
    out.extend({"href": t.url, "text": f"Trace {t.text}"} for t in _render.trace_links(n) if t.url)
    return out


def render(n: Notification, spec: PagerDutySpec) -> dict[str, Any]:
    """The event: a `trigger` for firing (and test) notifications, a `resolve` when resolved."""
    key = spec.routing_key.get_secret_value()
    dedup_key = n.fingerprint[:DEDUP_KEY_MAX]
    if n.status == "resolved" and n.kind == "alert":
        return {"routing_key": key, "event_action": "resolve", "dedup_key": dedup_key}
    summary = f"{_render.title(n)}: {n.summary}"
    if _render.value_text(n):
        summary += f" ({_render.value_text(n)})"
    payload: dict[str, Any] = {
        "summary": summary[:SUMMARY_MAX],
        "source": n.labels.get("service") or spec.source,
        "severity": SEVERITY[n.severity],
        "class": n.rule_name,
        "custom_details": _custom_details(n),
    }
    if n.started_at:
        payload["timestamp"] = _render.rfc3339(n.started_at)
    if spec.component or n.labels.get("operation"):
        payload["component"] = spec.component or n.labels["operation"]
    if spec.group or n.labels.get("project"):
        payload["group"] = spec.group or n.labels["project"]
    event: dict[str, Any] = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "Watchkeeper",
        "links": _links(n),
    }
    if n.url:
        event["client_url"] = n.url
    return event


class PagerDutyChannel(HttpChannel[PagerDutySpec]):
    """Sends events to a PagerDuty service integration."""

    def _url(self) -> str:
        return f"{self._spec.api_base.rstrip('/')}/v2/enqueue"

    def _json(self, notification: Notification) -> dict[str, Any]:
        return render(notification, self._spec)
