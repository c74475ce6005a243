"""Generic webhook: the notification as JSON, signed with HMAC-SHA256.

Verifying a delivery (receiver side):

1. Read the raw body bytes and the headers `X-Watchkeeper-Timestamp` (unix seconds) and
   `X-Watchkeeper-Signature` (`sha256=<hex>`).
2. Reject the request if the timestamp is more than five minutes from your clock: an old,
   captured request cannot be replayed later.
3. Compute `HMAC-SHA256(secret, f"{timestamp}.".encode() + body)` as hex and compare it with the
   signature in constant time (`hmac.compare_digest`). The timestamp is inside the signed bytes,
   so it cannot be changed without breaking the signature.
4. Retries of one delivery carry the same `X-Watchkeeper-Event-Id`: use it to drop duplicates.

`verify_signature` below does steps 2–3 and is what our own tests use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from watchkeeper.alerting._notification import Channel, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._http import post
from watchkeeper.alerting.channels._specs import UrlSpec


class WebhookSpec(UrlSpec):
    """Generic webhook: our JSON body, HMAC-signed when `secret` is set."""

    label = "Webhook"
    about = "Our JSON body POSTed to a URL, HMAC-signed when `secret` is set."

    type: Literal["webhook"] = "webhook"
    url: SecretStr
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return WebhookChannel(self, http)

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """Alertmanager's receiver config for this channel."""
        # Alertmanager posts its own JSON (version 4), unsigned: the receiver must expect it.
        return "webhook_configs", {
            "url": self.url.get_secret_value(),
            "send_resolved": self.send_resolved,
        }

    def extra_secrets(self) -> list[str]:
        """Header values (an Authorization header)."""
        return list(self.headers.values())


SIGNATURE_HEADER = "X-Watchkeeper-Signature"
TIMESTAMP_HEADER = "X-Watchkeeper-Timestamp"
EVENT_ID_HEADER = "X-Watchkeeper-Event-Id"
DEFAULT_TOLERANCE_S = 300.0
BODY_VERSION = "1"


def render_body(n: Notification) -> dict[str, Any]:
    """The JSON document a webhook receives."""
    return {
        "version": BODY_VERSION,
        "kind": n.kind,
        "status": n.status,
        "rule_id": n.rule_id,
        "rule_name": n.rule_name,
        "severity": n.severity,
        "fingerprint": n.fingerprint,
        "title": _render.title(n),
        "summary": n.summary,
        "description": n.description,
        "value": n.value,
        "threshold": n.threshold,
        "comparison": n.comparison,
        "unit": n.unit,
        "window_s": n.window_s,
        "value_text": _render.value_text(n),
        "labels": dict(n.labels),
        "annotations": dict(n.annotations),
        "started_at": _render.rfc3339(n.started_at) if n.started_at else None,
        "ended_at": _render.rfc3339(n.ended_at) if n.ended_at is not None else None,
        "url": n.url,
        "traces": [{"trace_id": t.text, "url": t.url} for t in _render.trace_links(n)],
        "body_markdown": n.body_markdown,
        "text": _render.plain_text(n),
    }


def event_id(n: Notification) -> str:
    """Same for every retry of one state change, different for the next change."""
    key = f"{n.fingerprint}|{n.status}|{n.started_at}|{n.ended_at}|{n.kind}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC of `timestamp.` + body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether a received webhook is authentic and fresh."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel(HttpChannel[WebhookSpec]):
    """POSTs the notification as signed JSON to a URL."""

    def __init__(
        self,
        spec: WebhookSpec,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(spec, http)
        self._clock = clock

    def request(self, n: Notification) -> tuple[bytes, dict[str, str]]:
        """The body bytes and headers of the delivery, signed at the clock's current time."""
        body = json.dumps(render_body(n), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            **self._spec.headers,
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id(n),
        }
        if self._spec.secret is not None:
            timestamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._spec.secret.get_secret_value(), timestamp, body)
        return body, headers

    def _url(self) -> str:
        return self._spec.url.get_secret_value()

    async def send(self, notification: Notification) -> None:
        """Deliver one notification, or raise DeliveryError."""
        # Not the JSON of HttpChannel.send: the bytes signed are the bytes sent.
        if not self._wants(notification):
            return
        body, headers = self.request(notification)
        await post(
            self._http,
            self._url(),
            what=self._what,
            timeout_s=self._spec.timeout_s,
            content=body,
            headers=headers,
        )
