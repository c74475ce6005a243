"""Every HTTP channel maps a receiver's failures onto DeliveryError the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.alerting.channels._support import notification
from tests.alerting.channels.conftest import Receiver, Reply
from watchkeeper.alerting._notification import Channel, DeliveryError
from watchkeeper.alerting.channels import build_channel, parse_channel_spec

SPECS: dict[str, Callable[[str], dict[str, Any]]] = {
    "webhook": lambda base: {"type": "webhook", "url": f"{base}/hook", "secret": "s3cret"},
    "slack": lambda base: {"type": "slack", "webhook_url": f"{base}/services/T/B/X"},
    "telegram": lambda base: {
        "type": "telegram",
        "bot_token": "123:ABC",
        "chat_id": "-100",
        "api_base": base,
    },
    "pagerduty": lambda base: {"type": "pagerduty", "routing_key": "R" * 32, "api_base": base},
    "google_chat": lambda base: {"type": "google_chat", "webhook_url": f"{base}/v1/spaces/AAA"},
    "teams": lambda base: {"type": "teams", "webhook_url": f"{base}/workflows/run"},
    "alertmanager": lambda base: {"type": "alertmanager", "url": base},
}


def channel(kind: str, base: str, http: httpx.AsyncClient) -> Channel:
    return build_channel(parse_channel_spec({"name": kind, **SPECS[kind](base)}, env={}), http)


@pytest.mark.parametrize("kind", sorted(SPECS))
async def test_429_is_retryable_after_the_wait_the_receiver_asks(
    kind: str, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.replies.append(Reply(429, {"Retry-After": "17"}, b"slow down"))
    with pytest.raises(DeliveryError) as err:
        await channel(kind, receiver.url, http).send(notification())
    assert err.value.retryable is True
    assert err.value.retry_after == 17.0
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("kind", sorted(SPECS))
async def test_500_is_retryable(kind: str, receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.replies.append(Reply(500, {}, b"internal trouble"))
    with pytest.raises(DeliveryError) as err:
        await channel(kind, receiver.url, http).send(notification())
    assert err.value.retryable is True
    assert err.value.retry_after is None
    assert "500" in str(err.value)


@pytest.mark.parametrize("kind", sorted(SPECS))
async def test_400_is_final_and_says_what_the_receiver_said(
    kind: str, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.replies.append(Reply(400, {}, b"invalid_payload: no text"))
    with pytest.raises(DeliveryError) as err:
        await channel(kind, receiver.url, http).send(notification())
    assert err.value.retryable is False
    assert "invalid_payload: no text" in str(err.value)
    assert "400" in str(err.value)


@pytest.mark.parametrize("kind", sorted(SPECS))
async def test_connection_refused_is_retryable(
    kind: str, refused_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(DeliveryError) as err:
        await channel(kind, refused_url, http).send(notification())
    assert err.value.retryable is True


@pytest.mark.parametrize("kind", sorted(SPECS))
async def test_a_channel_without_a_shared_client_makes_its_own(
    kind: str, receiver: Receiver
) -> None:
    spec = parse_channel_spec({"name": kind, **SPECS[kind](receiver.url)}, env={})
    receiver.default = Reply(200, {"Content-Type": "application/json"}, b'{"ok": true}')
    await build_channel(spec, None).send(notification())
    assert len(receiver.requests) == 1


async def test_secrets_in_the_url_stay_out_of_error_messages(
    refused_url: str, http: httpx.AsyncClient
) -> None:
    spec = parse_channel_spec(
        {"name": "s", "type": "slack", "webhook_url": f"{refused_url}/services/T/B/SECRETPART"},
        env={},
    )
    with pytest.raises(DeliveryError) as err:
        await build_channel(spec, http).send(notification())
    assert "SECRETPART" not in str(err.value)
    assert "SECRETPART" not in repr(spec)


async def test_retry_after_as_an_http_date_is_turned_into_seconds(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    receiver.replies.append(Reply(503, {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}))
    with pytest.raises(DeliveryError) as err:
        await channel("slack", receiver.url, http).send(notification())
    assert err.value.retryable is True
    assert err.value.retry_after is not None and err.value.retry_after > 86400
