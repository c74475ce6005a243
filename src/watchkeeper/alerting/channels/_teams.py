"""Microsoft Teams through a Workflows webhook: one Adaptive Card as a message attachment.

Workflows ("Post to a channel when a webhook request is received") expects
`{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}` and answers 202.
Adaptive Card 1.4 is the newest version Teams renders in every client.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import SecretStr

from watchkeeper.alerting._notification import Channel, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._specs import TEXT, TITLE, UrlSpec, version_of


class TeamsSpec(UrlSpec):
    """Microsoft Teams via a Workflows (Power Automate) webhook, as an Adaptive Card."""

    label = "Microsoft Teams"
    about = "A Teams Workflows (Power Automate) webhook: an Adaptive Card."

    type: Literal["teams"] = "teams"
    webhook_url: SecretStr

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return TeamsChannel(self, http)

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """Alertmanager's receiver config for this channel."""
        if version_of(version) < (0, 28):
            return f"Teams Workflows needs Alertmanager 0.28 (msteamsv2_configs), not {version}"
        return "msteamsv2_configs", {
            "webhook_url": self.webhook_url.get_secret_value(),
            "send_resolved": self.send_resolved,
            "title": TITLE,
            "text": TEXT,
        }


CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
#: Adaptive Card colour names per tone.
COLOUR = {"critical": "Attention", "warning": "Warning", "info": "Accent", "resolved": "Good"}


def _escape(text: str) -> str:
    # TextBlock renders a Markdown subset, and Teams does not honour backslash escapes: break
    # only what would turn user text into a link or emphasis, with an invisible joiner.
    for seq in ("](", "**", "__"):
        text = text.replace(seq, seq[0] + "\u2060" + seq[1:])
    return text


def _body(n: Notification) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"{_render.emoji(n)} {_escape(_render.title(n))}",
            "size": "Large",
            "weight": "Bolder",
            "color": COLOUR[_render.tone(n)],
            "wrap": True,
        }
    ]
    if n.summary:
        blocks.append({"type": "TextBlock", "text": _escape(n.summary), "wrap": True})
    body = _render.body_text(n)
    if body:
        blocks.append({"type": "TextBlock", "text": body, "wrap": True, "isSubtle": True})
    if _render.value_text(n):
        text = _escape(_render.value_text(n))
        blocks.append({"type": "TextBlock", "text": text, "wrap": True, "weight": "Bolder"})
    facts = [{"title": k, "value": _escape(v)} for k, v in _render.facts(n)]
    blocks.append({"type": "FactSet", "facts": facts})
    traces = _render.trace_links(n)
    if traces:
        items = [f"- [{t.text}]({t.url})" if t.url else f"- {t.text}" for t in traces]
        text = "**Example traces**\n\n" + "\n".join(items)
        blocks.append({"type": "TextBlock", "text": text, "wrap": True})
    return blocks


def render(n: Notification) -> dict[str, Any]:
    """The webhook body: a message with one Adaptive Card attachment."""
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": _body(n),
    }
    actions = [
        {"type": "Action.OpenUrl", "title": link.text, "url": link.url} for link in _render.links(n)
    ]
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


class TeamsChannel(HttpChannel[TeamsSpec]):
    """Posts an Adaptive Card to a Teams Workflows webhook."""

    def _url(self) -> str:
        return self._spec.webhook_url.get_secret_value()

    def _json(self, notification: Notification) -> dict[str, Any]:
        return render(notification)
