"""PagerDuty Events v2: trigger and resolve share the fingerprint as dedup_key."""

from __future__ import annotations

import httpx

from tests.alerting.channels._support import notification, resolved
from tests.alerting.channels.conftest import Receiver, Reply
from watchkeeper.alerting.channels import PagerDutyChannel, PagerDutySpec

KEY = "R0UTINGKEY0123456789abcdefABCDEF"


async def test_trigger_then_resolve(receiver: Receiver, http: httpx.AsyncClient) -> None:
    receiver.default = Reply(202, {"Content-Type": "application/json"}, b'{"status":"success"}')
    spec = PagerDutySpec.model_validate(
        {"name": "pd", "routing_key": KEY, "api_base": receiver.url + "/"}
    )
    channel = PagerDutyChannel(spec, http)
    await channel.send(notification())
    await channel.send(resolved())
    trigger, resolve = receiver.requests
    assert trigger.path == resolve.path == "/v2/enqueue"
    event = trigger.json()
    assert event["routing_key"] == KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "fp0123456789abcdef"
    payload = event["payload"]
    assert payload["summary"] == (
        "[FIRING] Chat p95 latency (Critical): p95 latency of chat-api is above 2 s "
        "(observed 2875 ms > threshold 2000 ms over 5m)"
    )
    assert payload["severity"] == "critical"
    assert payload["source"] == "chat-api"
    assert payload["group"] == "prod"
    assert payload["timestamp"] == "2025-11-23T12:13:20.000Z"
    details = payload["custom_details"]
    assert details["value"] == "2875 ms" and details["threshold"] == "> 2000 ms"
    assert details["window"] == "5m"
    assert len(details["example_traces"]) == 5
    assert event["client_url"] == "http://wk.example/alerts/r-latency"
    hrefs = [link["href"] for link in event["links"]]
    assert hrefs[:2] == ["http://wk.example/alerts/r-latency", "https://runbooks.example/latency"]
    assert len(hrefs) == 7  # alert, runbook, five traces
    assert resolve.json() == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": "fp0123456789abcdef",
    }


async def test_summary_is_cut_to_1024(receiver: Receiver, http: httpx.AsyncClient) -> None:
    spec = PagerDutySpec.model_validate(
        {"name": "pd", "routing_key": KEY, "api_base": receiver.url}
    )
    await PagerDutyChannel(spec, http).send(notification(summary="s" * 2000, severity="warning"))
    payload = receiver.requests[0].json()["payload"]
    assert len(payload["summary"]) == 1024
    assert payload["severity"] == "warning"
