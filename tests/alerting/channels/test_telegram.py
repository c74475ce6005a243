"""Telegram sendMessage: HTML escaped, long messages split between balanced lines."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import httpx
import pytest

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver, Reply
from watchkeeper.alerting._notification import DeliveryError
from watchkeeper.alerting.channels import TelegramChannel, TelegramSpec
from watchkeeper.alerting.channels._telegram import MESSAGE_LIMIT, units

OK = Reply(200, {"Content-Type": "application/json"}, b'{"ok":true,"result":{}}')
ALLOWED = {"b", "i", "a", "code"}


class TagChecker(HTMLParser):
    """Fails on unknown or unbalanced tags; collects the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(html_text: str) -> str:
    checker = TagChecker()
    checker.feed(html_text)
    checker.close()
    assert checker.stack == []
    return "".join(checker.text)


def make(receiver: Receiver, http: httpx.AsyncClient, **extra: object) -> TelegramChannel:
    spec = TelegramSpec.model_validate(
        {"name": "tg", "bot_token": "123456:ABC-def", "chat_id": "-1001", "api_base": receiver.url}
        | extra
    )
    return TelegramChannel(spec, http)


async def test_send_message_body(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.default = OK
    await make(receiver, http, message_thread_id=7).send(notification())
    (req,) = receiver.requests
    assert req.path == "/bot123456:ABC-def/sendMessage"
    body = req.json()
    assert body["chat_id"] == "-1001"
    assert body["parse_mode"] == "HTML"
    assert body["message_thread_id"] == 7
    assert body["link_preview_options"] == {"is_disabled": True}
    text = body["text"]
    assert text.startswith("🔴 <b>[FIRING] Chat p95 latency (Critical)</b>\n")
    assert "&lt;since deploy&gt; &amp; rising" in text
    assert "<i>observed 2875 ms &gt; threshold 2000 ms over 5m</i>" in text
    assert "<b>Window:</b> 5m" in text
    assert text.count('<a href="http://wk.example/traces/') == 5
    assert '<a href="http://wk.example/alerts/r-latency">Open in Watchkeeper</a>' in text
    visible(text)


async def test_resolved_is_sent_silently(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.default = OK
    await make(receiver, http).send(resolved())
    body = receiver.requests[0].json()
    assert body["disable_notification"] is True
    assert body["text"].startswith("✅ <b>[RESOLVED]")


async def test_resolved_is_not_sent_when_the_spec_says_so(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.default = OK
    await make(receiver, http, send_resolved=False).send(resolved())
    assert receiver.requests == []


async def test_long_message_is_split_without_breaking_tags_or_entities(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.default = OK
    # 30,000 characters of text that escapes heavily, with one line longer than the limit
    description = ("a < b & c > d " * 400 + "\n") * 4 + "<&>" * 3000
    await make(receiver, http).send(notification(description=description))
    texts = [r.json()["text"] for r in receiver.requests]
    assert len(texts) > 3
    for text in texts:
        assert units(text) <= MESSAGE_LIMIT
        visible(text)  # balanced, known tags only; entities intact (parser would show '&amp')
    joined = "".join(visible(t) for t in texts).replace("\n", "")
    assert description.replace("\n", "") in joined
    assert "&amp" not in joined


async def test_429_wait_is_read_from_the_body(receiver: Receiver, http: httpx.AsyncClient) -> None:
    body = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 23",
        "parameters": {"retry_after": 23},
    }
    receiver.replies.append(Reply(429, {}, json.dumps(body).encode()))
    with pytest.raises(DeliveryError) as err:
        await make(receiver, http).send(notification())
    assert err.value.retryable and err.value.retry_after == 23.0
    assert "Too Many Requests" in str(err.value)


async def test_bot_blocked_is_final(receiver: Receiver, http: httpx.AsyncClient) -> None:
    body = b'{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}'
    receiver.replies.append(Reply(403, {}, body))
    with pytest.raises(DeliveryError) as err:
        await make(receiver, http).send(notification())
    assert not err.value.retryable
    assert "bot was blocked" in str(err.value)
    assert "ABC-def" not in str(err.value)
