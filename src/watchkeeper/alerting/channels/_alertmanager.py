"""Prometheus Alertmanager: `POST /api/v2/alerts`.

Alertmanager identifies an alert by its label set, so labels hold only what is stable for the
alert's life (name, severity, rule, fingerprint, group labels); the value, links and example
traces go into annotations. A resolved alert is the same label set with `endsAt` set to the
resolution time.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, model_validator

from watchkeeper.alerting._notification import Channel, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._specs import UrlSpec


class AlertmanagerSpec(UrlSpec):
    """Prometheus Alertmanager `POST /api/v2/alerts`."""

    label = "Alertmanager"
    about = "Alerts pushed into a Prometheus Alertmanager (POST /api/v2/alerts)."

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
    extra_labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_credential(self) -> AlertmanagerSpec:
        """At most one way to sign in, as Prometheus's own config says: with a user in the
        URL and a bearer token, the HTTP client sent the URL's and dropped the token."""
        given = [
            name
            for name, set_ in (
                ("a user in the url", urlsplit(self.url).username is not None),
                ("username/password", self.username is not None or self.password is not None),
                ("bearer_token", self.bearer_token is not None),
            )
            if set_
        ]
        if len(given) > 1:
            raise ValueError(f"give one credential, not {' and '.join(given)}")
        if self.password is not None and self.username is None:
            raise ValueError("password without username: give both")
        return self

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return AlertmanagerChannel(self, http)

    def extra_secrets(self) -> list[str]:
        """The password in the URL."""
        return [urlsplit(self.url).password or ""]


_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


def label_name(name: str) -> str:
    """A Prometheus-valid label name: letters, digits and '_', not starting with a digit."""
    cleaned = _LABEL_NAME.sub("_", name) or "_"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def alert_labels(n: Notification, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The label set: group labels, then ours (which win on a clash)."""
    out = {label_name(k): v for k, v in n.labels.items() if v != ""}
    out.update(extra or {})
    out.update(
        {
            "alertname": n.rule_name,
            "severity": n.severity,
            "watchkeeper_rule_id": n.rule_id,
            "watchkeeper_fingerprint": n.fingerprint,
        }
    )
    if n.kind != "alert":
        out["watchkeeper_kind"] = n.kind
    return out


def alert_annotations(n: Notification) -> dict[str, str]:
    """Annotations: what a person reads, and the links."""
    out = {label_name(k): v for k, v in n.annotations.items()}
    out["summary"] = n.summary
    body = _render.body_text(n)
    if body:
        out["description"] = body
    if n.value is not None:
        out["value"] = _render.format_number(n.value, n.unit)
        out["value_text"] = _render.value_text(n)
    if n.threshold is not None:
        out["threshold"] = f"{n.comparison} {_render.format_number(n.threshold, n.unit)}"
    if n.window_s:
        out["window"] = _render.format_window(n.window_s)
    if n.url:
        out["watchkeeper_url"] = n.url
    traces = _render.trace_links(n)
    if traces:
        out["example_traces"] = "\n".join(t.url or t.text for t in traces)
    return out


def render(
    n: Notification, spec: AlertmanagerSpec, now: float | None = None
) -> list[dict[str, Any]]:
    """The request body: a list holding the one alert."""
    alert: dict[str, Any] = {
        "labels": alert_labels(n, spec.extra_labels),
        "annotations": alert_annotations(n),
        "startsAt": _render.rfc3339(n.started_at or (now or time.time())),
    }
    if n.status == "resolved":
        alert["endsAt"] = _render.rfc3339(n.ended_at or now or time.time())
    elif spec.firing_ttl_s is not None:
        alert["endsAt"] = _render.rfc3339((now or time.time()) + spec.firing_ttl_s)
    if n.url:
        alert["generatorURL"] = n.url
    return [alert]


class AlertmanagerChannel(HttpChannel[AlertmanagerSpec]):
    """Pushes alerts into an Alertmanager, which then routes, groups and silences them."""

    def __init__(
        self,
        spec: AlertmanagerSpec,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(spec, http)
        self._clock = clock

    def _url(self) -> str:
        return f"{self._spec.url.rstrip('/')}/api/v2/alerts"

    def _json(self, notification: Notification) -> list[dict[str, Any]]:
        return render(notification, self._spec, self._clock())

    def _headers(self) -> dict[str, str]:
        spec = self._spec
        if spec.bearer_token is not None:
            return {"Authorization": f"Bearer {spec.bearer_token.get_secret_value()}"}
        if spec.username is not None:
            password = spec.password.get_secret_value() if spec.password else ""
            token = base64.b64encode(f"{spec.username}:{password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        return {}
