"""Google Chat incoming webhook: a cardsV2 message (or text), threaded per alert.

`thread.threadKey` is the alert fingerprint and the URL carries
`messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`: the first notification of an alert
starts a thread and its updates and resolution reply in it. Card text takes a small HTML subset
(`<b>`, `<i>`, `<a href>`, `<br>`, `<font color>`); text messages take Chat's own markup.
"""

from __future__ import annotations

import html
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from watchkeeper.alerting._notification import Channel, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._specs import UrlSpec


class GoogleChatSpec(UrlSpec):
    """Google Chat incoming webhook, one thread per alert."""

    label = "Google Chat"
    about = "A Google Chat incoming webhook: a card, one thread per alert."

    type: Literal["google_chat"] = "google_chat"
    webhook_url: SecretStr
    cards: bool = True  # cardsV2 message; False sends formatted text only

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return GoogleChatChannel(self, http)


REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
TEXT_MAX = 4000


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _headline(n: Notification) -> str:
    return f"{_render.emoji(n)} {_render.title(n)}"


def _intro(n: Notification) -> str:
    parts = [f"<b>{_esc(n.summary)}</b>"] if n.summary else []
    body = _render.body_text(n)
    if body:
        parts.append(_esc(body[:TEXT_MAX]).replace("\n", "<br>"))
    if _render.value_text(n):
        colour = _render.colour(n)
        parts.append(f'<font color="#{colour}">{_esc(_render.value_text(n))}</font>')
    return "<br>".join(parts) or _esc(_render.title(n))


def _sections(n: Notification) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = [{"widgets": [{"textParagraph": {"text": _intro(n)}}]}]
    facts = [{"decoratedText": {"topLabel": k, "text": _esc(v)}} for k, v in _render.facts(n)]
    sections.append({"header": "Details", "collapsible": False, "widgets": facts})
    traces = _render.trace_links(n)
    if traces:
        items = [
            f'<a href="{_esc(t.url)}">{_esc(t.text)}</a>' if t.url else _esc(t.text) for t in traces
        ]
        text = "<br>".join(items)
        sections.append(
            {"header": "Example traces", "widgets": [{"textParagraph": {"text": text}}]}
        )
    buttons = [
        {"text": link.text, "onClick": {"openLink": {"url": link.url}}} for link in _render.links(n)
    ]
    if buttons:
        sections.append({"widgets": [{"buttonList": {"buttons": buttons}}]})
    return sections


def _text(n: Notification) -> str:
    # Chat's text markup: *bold*, _italic_, <url|label> links.
    lines = [f"*{_headline(n)}*", n.summary]
    body = _render.body_text(n)
    if body:
        lines.append(body)
    if _render.value_text(n):
        lines.append(f"_{_render.value_text(n)}_")
    lines.extend(f"*{k}:* {v}" for k, v in _render.facts(n))
    lines.extend(
        f"• <{t.url}|{t.text}>" if t.url else f"• {t.text}" for t in _render.trace_links(n)
    )
    lines.extend(f"<{link.url}|{link.text}>" for link in _render.links(n))
    return "\n".join(line for line in lines if line)[:TEXT_MAX]


def render(n: Notification, cards: bool = True) -> dict[str, Any]:
    """The message body posted to the webhook."""
    thread = {"threadKey": n.fingerprint}
    if not cards:
        return {"text": _text(n), "thread": thread}
    header = {
        "title": _headline(n),
        "subtitle": f"{n.labels.get('service', '')} · rule {n.rule_id}".strip(" ·"),
    }
    card = {"header": header, "sections": _sections(n)}
    return {
        "text": _headline(n),
        "thread": thread,
        "cardsV2": [{"cardId": f"watchkeeper-{n.fingerprint}"[:64], "card": card}],
    }


class GoogleChatChannel(HttpChannel[GoogleChatSpec]):
    """Posts to a Google Chat space's incoming webhook."""

    def _url(self) -> str:
        # The webhook URL already carries key and token: merge, never replace, its query.
        url = httpx.URL(self._spec.webhook_url.get_secret_value())
        return str(url.copy_merge_params({"messageReplyOption": REPLY_OPTION}))

    def _json(self, notification: Notification) -> dict[str, Any]:
        return render(notification, self._spec.cards)
