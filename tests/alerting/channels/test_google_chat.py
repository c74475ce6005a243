"""Google Chat webhook: cardsV2, threadKey = fingerprint, reply-or-new-thread option."""

from __future__ import annotations

import httpx

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver
from watchkeeper.alerting.channels import GoogleChatChannel, GoogleChatSpec


def make(receiver: Receiver, http: httpx.AsyncClient, cards: bool = True) -> GoogleChatChannel:
    url = f"{receiver.url}/v1/spaces/AAAA/messages?key=K&token=T"
    spec = GoogleChatSpec.model_validate({"name": "gc", "webhook_url": url, "cards": cards})
    return GoogleChatChannel(spec, http)


async def test_card_message_in_the_alerts_thread(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    channel = make(receiver, http)
    await channel.send(notification())
    await channel.send(resolved())
    first, second = receiver.requests
    assert first.path == "/v1/spaces/AAAA/messages"
    assert first.query == {
        "key": ["K"],
        "token": ["T"],
        "messageReplyOption": ["REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"],
    }
    body = first.json()
    assert body["thread"] == {"threadKey": "fp0123456789abcdef"}
    assert second.json()["thread"] == body["thread"]
    (card,) = body["cardsV2"]
    assert card["cardId"] == "watchkeeper-fp0123456789abcdef"
    assert card["card"]["header"]["title"] == "🔴 [FIRING] Chat p95 latency (Critical)"
    intro, details, traces, buttons = card["card"]["sections"]
    text = intro["widgets"][0]["textParagraph"]["text"]
    assert "&lt;since deploy&gt; &amp; rising" in text
    assert "observed 2875 ms &gt; threshold 2000 ms over 5m" in text
    facts = {w["decoratedText"]["topLabel"]: w["decoratedText"]["text"] for w in details["widgets"]}
    assert facts["Value"] == "2875 ms" and facts["Window"] == "5m"
    assert (
        traces["widgets"][0]["textParagraph"]["text"].count('<a href="http://wk.example/traces/')
        == 5
    )
    links = [
        b["onClick"]["openLink"]["url"] for b in buttons["widgets"][0]["buttonList"]["buttons"]
    ]
    assert links == ["http://wk.example/alerts/r-latency", "https://runbooks.example/latency"]
    assert second.json()["cardsV2"][0]["card"]["header"]["title"].startswith("✅ [RESOLVED]")


async def test_text_only_message(receiver: Receiver, http: httpx.AsyncClient) -> None:
    await make(receiver, http, cards=False).send(notification())
    body = receiver.requests[0].json()
    assert set(body) == {"text", "thread"}
    assert body["text"].startswith("*🔴 [FIRING] Chat p95 latency (Critical)*")
    assert "<http://wk.example/alerts/r-latency|Open in Watchkeeper>" in body["text"]
