"""Teams Workflows webhook: a message with one Adaptive Card attachment."""

from __future__ import annotations

import httpx

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver, Reply
from watchkeeper.alerting.channels import TeamsChannel, TeamsSpec


async def test_adaptive_card_payload(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.default = Reply(202, {}, b"")
    spec = TeamsSpec.model_validate({"name": "t", "webhook_url": f"{receiver.url}/workflows/x"})
    channel = TeamsChannel(spec, http)
    await channel.send(notification())
    await channel.send(resolved())
    body = receiver.requests[0].json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    title = card["body"][0]
    assert title["text"] == "🔴 [FIRING] Chat p95 latency (Critical)"
    assert title["color"] == "Attention"
    (facts,) = [b for b in card["body"] if b["type"] == "FactSet"]
    by_title = {f["title"]: f["value"] for f in facts["facts"]}
    assert by_title["Value"] == "2875 ms" and by_title["Threshold"] == "> 2000 ms"
    assert by_title["Window"] == "5m"
    traces = card["body"][-1]["text"]
    assert traces.count("](http://wk.example/traces/") == 5
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "Open in Watchkeeper",
        "url": "http://wk.example/alerts/r-latency",
    }
    resolved_card = receiver.requests[1].json()["attachments"][0]["content"]
    assert resolved_card["body"][0]["color"] == "Good"
