"""Slack incoming webhook: Block Kit blocks, a coloured attachment, and a fallback `text`.

Block Kit limits kept here: header text 150 characters, section text 3,000, at most 10 fields
of 2,000 each, button text 75 and URL 3,000. The colour bar exists only on attachments, so the
header sits in the top-level blocks and the details in one coloured attachment.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import SecretStr

from watchkeeper.alerting._notification import Channel, Notification
from watchkeeper.alerting.channels import _render
from watchkeeper.alerting.channels._base import HttpChannel
from watchkeeper.alerting.channels._specs import SLACK_COLOUR, TEXT, TITLE, UrlSpec


class SlackSpec(UrlSpec):
    """Slack incoming webhook."""

    label = "Slack"
    about = "A Slack incoming webhook: Block Kit blocks with a coloured attachment."

    type: Literal["slack"] = "slack"
    webhook_url: SecretStr
    channel: str | None = None  # only legacy webhooks honour an override

    def build(self, http: httpx.AsyncClient | None = None) -> Channel:
        """The channel sending through `http` (or a client of its own per send)."""
        return SlackChannel(self, http)

    def alertmanager(self, version: str) -> tuple[str, dict[str, Any]] | str:
        """Alertmanager's receiver config for this channel."""
        cfg: dict[str, Any] = {"api_url": self.webhook_url.get_secret_value()}
        if self.channel:
            cfg["channel"] = self.channel
        cfg.update({"send_resolved": self.send_resolved, "title": TITLE, "text": TEXT})
        cfg.update({"color": SLACK_COLOUR, "title_link": "{{ (index .Alerts 0).GeneratorURL }}"})
        return "slack_configs", cfg


HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
BUTTON_TEXT_MAX = 75


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(text: str, url: str) -> str:
    # '|' and '>' would end the link early; escaping them in the label keeps it intact.
    return f"<{url}|{escape(text).replace('|', '¦')}>" if url else f"`{escape(text)}`"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_MAX)}}


def _main_text(n: Notification) -> str:
    parts = [f"*{escape(n.summary)}*"] if n.summary else []
    body = _render.body_text(n)
    if body:
        parts.append(escape(body))
    if _render.value_text(n):
        parts.append(escape(_render.value_text(n)))
    return "\n".join(parts) or escape(_render.title(n))


def _detail_blocks(n: Notification) -> list[dict[str, Any]]:
    blocks = [_section(_main_text(n))]
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{escape(k)}*\n{escape(v)}", FIELD_MAX)}
        for k, v in _render.facts(n)[:MAX_FIELDS]
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    traces = _render.trace_links(n)
    if traces:
        lines = "\n".join(f"• {_link(t.text, t.url)}" for t in traces)
        blocks.append(_section(f"*Example traces*\n{lines}"))
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": _cut(link.text, BUTTON_TEXT_MAX)},
            "url": link.url,
        }
        for link in _render.links(n)
    ]
    if buttons:
        buttons[0]["style"] = "primary"
        blocks.append({"type": "actions", "elements": buttons})
    context = f"Rule `{escape(n.rule_id)}` · fingerprint `{escape(n.fingerprint)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return blocks


def render(n: Notification, channel: str | None = None) -> dict[str, Any]:
    """The JSON payload of the incoming webhook."""
    header = _cut(f"{_render.emoji(n)} {_render.title(n)}", HEADER_MAX)
    payload: dict[str, Any] = {
        "text": f"{_render.emoji(n)} {_render.title(n)}: {n.summary}",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": header}}],
        "attachments": [{"color": "#" + _render.colour(n), "blocks": _detail_blocks(n)}],
    }
    if channel:
        payload["channel"] = channel
    return payload


class SlackChannel(HttpChannel[SlackSpec]):
    """Posts to a Slack incoming webhook."""

    def _url(self) -> str:
        return self._spec.webhook_url.get_secret_value()

    def _json(self, notification: Notification) -> dict[str, Any]:
        return render(notification, self._spec.channel)
