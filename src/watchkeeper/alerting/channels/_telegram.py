"""Telegram Bot API `sendMessage` with `parse_mode=HTML`.

A message holds at most 4,096 characters after entity parsing. We build the message as lines
that are each complete HTML (every tag opened and closed on its line) and split only between
lines, so no tag is ever cut; a line of free text longer than the limit is cut as plain text
before it is escaped, so no `&amp;` is cut either. Length is counted in UTF-16 units, which
is never less than what Telegram counts.

A split notification is sent as consecutive messages; if a later part fails, the retry of the
delivery sends every part again (Telegram has no idempotency key), so a reader may see the
first part twice.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from watchkeeper.alerting._notification import Channel, DeliveryError, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._http import error_for_response, post
from watchkeeper.alerting.channels._specs import TELEGRAM_MESSAGE, UrlSpec


class TelegramSpec(UrlSpec):
    """Telegram Bot API sendMessage."""

    label = "Telegram"
    about = "The Telegram Bot API: a message to a chat, a channel or a forum topic."

    type: Literal["telegram"] = "telegram"
    bot_token: SecretStr
    chat_id: int | str  # numeric id (YAML reads it as a number) or "@channelname"
    message_thread_id: int | None = None  # forum topic
    api_base: str = "https://api.telegram.org"
    disable_notification: bool = False

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return TelegramChannel(self, http)

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """Alertmanager's receiver config for this channel."""
        try:
            chat_id = int(self.chat_id)
        except ValueError:  # "@channelname"
            return "Alertmanager's telegram_configs takes a numeric chat_id only"
        return "telegram_configs", {
            "bot_token": self.bot_token.get_secret_value(),
            "chat_id": chat_id,
            "api_url": self.api_base,
            "parse_mode": "HTML",
            "message": TELEGRAM_MESSAGE,
            "send_resolved": self.send_resolved,
        }


MESSAGE_LIMIT = 4096
VALUE_MAX = 512  # one fact or label value; keeps structured lines far below the limit


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message: ready HTML, or plain text still to be escaped (and cuttable)."""

    content: str
    plain: bool = False


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def esc(text: str, limit: int = VALUE_MAX) -> str:
    """Escape for Telegram HTML (also quotes, for attributes), cutting the raw text first."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _link(text: str, url: str) -> str:
    if not url:
        return f"<code>{esc(text)}</code>"
    return f'<a href="{esc(url, 2048)}">{esc(text)}</a>'


def lines(n: Notification) -> list[Line]:
    """The message as lines, each balanced HTML or plain text."""
    out = [Line(f"{_render.emoji(n)} <b>{esc(_render.title(n))}</b>")]
    if n.summary:
        out.append(Line(f"<b>{esc(n.summary)}</b>"))
    body = _render.body_text(n)
    out.extend(Line(text, plain=True) for text in body.splitlines())
    if _render.value_text(n):
        out.append(Line(f"<i>{esc(_render.value_text(n))}</i>"))
    out.append(Line(""))
    out.extend(Line(f"<b>{esc(k)}:</b> {esc(v)}") for k, v in _render.facts(n))
    traces = _render.trace_links(n)
    if traces:
        out.append(Line("<b>Example traces:</b>"))
        out.extend(Line(f"• {_link(t.text, t.url)}") for t in traces)
    link_line = " | ".join(_link(link.text, link.url) for link in _render.links(n))
    if link_line:
        out.append(Line(link_line))
    return out


def _plain_pieces(text: str, limit: int) -> list[str]:
    # Cut the raw text so each escaped piece fits; escaping can only grow a piece (≤ 6×).
    pieces: list[str] = []
    while text:
        size = min(len(text), limit)
        while size > 1 and units(html.escape(text[:size], quote=True)) > limit:
            size = max(1, size * 3 // 4)
        pieces.append(html.escape(text[:size], quote=True))
        text = text[size:]
    return pieces or [""]


def split_messages(message_lines: list[Line], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pack lines into as few messages as possible, each at most `limit` units long."""
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for line in message_lines:
        pieces = _plain_pieces(line.content, limit) if line.plain else [line.content]
        for piece in pieces:
            extra = units(piece) + (1 if current else 0)
            if current and size + extra > limit:
                messages.append("\n".join(current))
                current, size = [], 0
                extra = units(piece)
            current.append(piece)
            size += extra
    if current:
        messages.append("\n".join(current))
    return [m for m in messages if m.strip()]


def render(n: Notification, spec: TelegramSpec, limit: int = MESSAGE_LIMIT) -> list[dict[str, Any]]:
    """The `sendMessage` bodies, in order (usually one)."""
    bodies = []
    for text in split_messages(lines(n), limit):
        body: dict[str, Any] = {
            "chat_id": spec.chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if spec.message_thread_id is not None:
            body["message_thread_id"] = spec.message_thread_id
        if spec.disable_notification or n.status == "resolved":
            body["disable_notification"] = True
        bodies.append(body)
    return bodies


def _failure(what: str, response: httpx.Response) -> DeliveryError:
    exc = error_for_response(what, response)
    # Telegram puts the wait of a 429 in the body (parameters.retry_after), not always a header.
    data = _safe_json(response)
    params = data.get("parameters") if isinstance(data, dict) else None
    if exc.retryable and exc.retry_after is None and isinstance(params, dict):
        wait = params.get("retry_after")
        if isinstance(wait, int | float):
            return DeliveryError(str(exc), True, float(wait))
    return exc


class TelegramChannel(HttpChannel[TelegramSpec]):
    """Sends messages through a Telegram bot."""

    def _url(self) -> str:
        token = self._spec.bot_token.get_secret_value()
        return f"{self._spec.api_base.rstrip('/')}/bot{token}/sendMessage"

    async def send(self, notification: Notification) -> None:
        """Deliver one notification (in several messages when long), or raise DeliveryError."""
        if not self._wants(notification):
            return
        what = self._what
        for body in render(notification, self._spec):
            response = await post(
                self._http,
                self._url(),
                what=what,
                timeout_s=self._spec.timeout_s,
                json=body,
                failure=_failure,
            )
            data = _safe_json(response)
            if not (isinstance(data, dict) and data.get("ok") is True):
                raise DeliveryError(f"{what}: unexpected answer {response.text[:300]!r}", False)


def _safe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
