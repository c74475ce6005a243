"""`HttpChannel`: a channel that renders a notification as JSON and POSTs it to its spec's URL.

Five channels are only that, so each of their modules keeps just what is its own: the spec, the
render function, the URL and (Alertmanager) the auth headers. The generic webhook (signed bytes)
and Telegram (several messages, the answer checked) override `send` and keep the rest.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import httpx

from watchkeeper.alerting._notification import Notification
from watchkeeper.alerting.channels._http import post
from watchkeeper.alerting.channels._specs import Spec

SpecT = TypeVar("SpecT", bound=Spec)


class HttpChannel(Generic[SpecT]):
    """Sends through `http` (or a short-lived client per send) to the receiver `spec` names."""

    def __init__(self, spec: SpecT, http: httpx.AsyncClient | None = None) -> None:
        self.name = spec.name
        self._spec = spec
        self._http = http

    @property
    def type(self) -> str:
        """The channel type, as its spec says."""
        return self._spec.type

    @property
    def _what(self) -> str:
        # How delivery errors name the channel: "google chat team-room".
        return f"{self.type.replace('_', ' ')} {self.name}"

    def _wants(self, notification: Notification) -> bool:
        # A resolution goes out only when the spec has `send_resolved`.
        return notification.status != "resolved" or self._spec.send_resolved

    def _url(self) -> str:
        raise NotImplementedError

    def _json(self, notification: Notification) -> Any:
        raise NotImplementedError

    def _headers(self) -> dict[str, str] | None:
        return None

    async def send(self, notification: Notification) -> None:
        """Deliver one notification, or raise DeliveryError."""
        if not self._wants(notification):
            return
        await post(
            self._http,
            self._url(),
            what=self._what,
            timeout_s=self._spec.timeout_s,
            json=self._json(notification),
            headers=self._headers(),
        )
