"""Slack incoming webhook payload: header block, coloured attachment, fallback text."""

from __future__ import annotations

import httpx

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver
from watchkeeper.alerting.channels import SlackChannel, SlackSpec


def make(receiver: Receiver, http: httpx.AsyncClient) -> SlackChannel:
    spec = SlackSpec.model_validate(
        {"name": "slack", "webhook_url": f"{receiver.url}/services/T0/B0/XYZ"}
    )
    return SlackChannel(spec, http)


async def test_firing_message_has_blocks_colour_and_fallback(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await make(receiver, http).send(notification())
    (req,) = receiver.requests
    assert req.path == "/services/T0/B0/XYZ"
    body = req.json()
    assert body["text"].startswith("🔴 [FIRING] Chat p95 latency (Critical)")
    (header,) = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🔴 [FIRING] Chat p95 latency (Critical)"},
    }
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#D92D20"
    blocks = attachment["blocks"]
    assert [b["type"] for b in blocks] == ["section", "section", "section", "actions", "context"]
    main = blocks[0]["text"]
    assert main["type"] == "mrkdwn"
    # user text is escaped: '<' '>' '&' would otherwise be read as links and entities
    assert "&lt;since deploy&gt; &amp; rising" in main["text"]
    assert "observed 2875 ms &gt; threshold 2000 ms over 5m" in main["text"]
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert "*Value*\n2875 ms" in fields
    assert "*Threshold*\n&gt; 2000 ms" in fields
    assert "*Window*\n5m" in fields
    assert len(fields) <= 10
    traces = blocks[2]["text"]["text"]
    assert traces.count("<http://wk.example/traces/") == 5
    buttons = blocks[3]["elements"]
    assert buttons[0]["url"] == "http://wk.example/alerts/r-latency"
    assert buttons[0]["style"] == "primary"
    assert buttons[1] == {
        "type": "button",
        "text": {"type": "plain_text", "text": "Runbook"},
        "url": "https://runbooks.example/latency",
    }


async def test_resolved_message_is_green(receiver: Receiver, http: httpx.AsyncClient) -> None:
    await make(receiver, http).send(resolved())
    body = receiver.requests[0].json()
    assert body["attachments"][0]["color"] == "#12B76A"
    assert body["blocks"][0]["text"]["text"].startswith("✅ [RESOLVED]")
    fields = [f["text"] for f in body["attachments"][0]["blocks"][1]["fields"]]
    assert "*Resolved*\n2025-11-23 12:23:20 UTC" in fields


async def test_long_texts_are_cut_to_block_kit_limits(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await make(receiver, http).send(
        notification(
            rule_name="R" * 400, description="d" * 5000, labels={f"k{i}": "v" for i in range(20)}
        )
    )
    body = receiver.requests[0].json()
    assert len(body["blocks"][0]["text"]["text"]) == 150
    blocks = body["attachments"][0]["blocks"]
    assert len(blocks[0]["text"]["text"]) <= 3000
    assert len(blocks[1]["fields"]) == 10
