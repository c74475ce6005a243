"""Generic webhook: JSON body, HMAC signature over timestamp and body, replay protection."""

from __future__ import annotations

import hashlib
import hmac

import httpx

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver
from watchkeeper.alerting.channels import WebhookChannel, WebhookSpec, verify_signature

NOW = 1_763_900_100.0


def make(receiver: Receiver, http: httpx.AsyncClient, **extra: object) -> WebhookChannel:
    spec = WebhookSpec.model_validate(
        {"name": "hook", "url": f"{receiver.url}/in", "secret": "topsecret", **extra}
    )
    return WebhookChannel(spec, http, clock=lambda: NOW)


async def test_body_carries_every_field_and_the_signature_verifies(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await make(receiver, http, headers={"X-Team": "ai"}).send(notification())
    (req,) = receiver.requests
    assert req.path == "/in"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-team"] == "ai"
    assert req.headers["x-watchkeeper-timestamp"] == str(int(NOW))
    expected = hmac.new(b"topsecret", f"{int(NOW)}.".encode() + req.body, hashlib.sha256)
    assert req.headers["x-watchkeeper-signature"] == "sha256=" + expected.hexdigest()
    assert verify_signature(
        "topsecret", req.body, req.headers["x-watchkeeper-timestamp"],
        req.headers["x-watchkeeper-signature"], now=NOW + 10,
    )  # fmt: skip
    body = req.json()
    assert body["version"] == "1"
    assert body["status"] == "firing" and body["severity"] == "critical"
    assert body["rule_name"] == "Chat p95 latency"
    assert body["value"] == 2875.0 and body["threshold"] == 2000.0 and body["unit"] == "ms"
    assert body["window_s"] == 300.0
    assert body["value_text"] == "observed 2875 ms > threshold 2000 ms over 5m"
    assert body["url"] == "http://wk.example/alerts/r-latency"
    assert len(body["traces"]) == 5
    assert body["traces"][0] == {
        "trace_id": "00000000000000000000000000000001",
        "url": "http://wk.example/traces/00000000000000000000000000000001",
    }
    assert body["started_at"] == "2025-11-23T12:13:20.000Z"
    assert body["ended_at"] is None


async def test_replayed_or_tampered_requests_fail_verification(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await make(receiver, http).send(notification())
    (req,) = receiver.requests
    ts, sig = req.headers["x-watchkeeper-timestamp"], req.headers["x-watchkeeper-signature"]
    assert not verify_signature("topsecret", req.body, ts, sig, now=NOW + 301)  # replay later
    assert not verify_signature("topsecret", req.body + b" ", ts, sig, now=NOW)  # body changed
    assert not verify_signature("topsecret", req.body, str(int(NOW) + 1), sig, now=NOW)
    assert not verify_signature("other", req.body, ts, sig, now=NOW)


async def test_retries_share_an_event_id_and_the_resolution_gets_another(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    channel = make(receiver, http)
    await channel.send(notification())
    await channel.send(notification())
    await channel.send(resolved())
    ids = [r.headers["x-watchkeeper-event-id"] for r in receiver.requests]
    assert ids[0] == ids[1] != ids[2]
    assert receiver.requests[2].json()["ended_at"] == "2025-11-23T12:23:20.000Z"


async def test_unsigned_when_no_secret_and_resolved_skipped_when_asked(
    receiver: Receiver, http: httpx.AsyncClient
) -> None:
    spec = WebhookSpec(name="plain", url=f"{receiver.url}/x", send_resolved=False)  # type: ignore[arg-type]
    channel = WebhookChannel(spec, http)
    await channel.send(notification())
    await channel.send(resolved())
    (req,) = receiver.requests
    assert "x-watchkeeper-signature" not in req.headers
