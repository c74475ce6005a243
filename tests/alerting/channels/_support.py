"""Notifications used across the channel tests."""

from __future__ import annotations

from typing import Any

from watchkeeper.alerting._notification import Notification


def notification(**overrides: Any) -> Notification:
    """A firing latency alert with every field a channel shows."""
    fields: dict[str, Any] = {
        "rule_id": "r-latency",
        "rule_name": "Chat p95 latency",
        "status": "firing",
        "severity": "critical",
        "fingerprint": "fp0123456789abcdef",
        "summary": "p95 latency of chat-api is above 2 s",
        "description": "Requests to the chat endpoint are slow <since deploy> & rising.",
        "value": 2875.0,
        "threshold": 2000.0,
        "comparison": ">",
        "unit": "ms",
        "window_s": 300.0,
        "labels": {"service": "chat-api", "project": "prod"},
        "annotations": {"runbook_url": "https://runbooks.example/latency"},
        "started_at": 1_763_900_000.0,
        "url": "http://wk.example/alerts/r-latency",
        "trace_ids": tuple(f"{i:032x}" for i in range(1, 8)),
        "trace_url_template": "http://wk.example/traces/{trace_id}",
    }
    fields.update(overrides)
    return Notification(**fields)


def resolved(**overrides: Any) -> Notification:
    """The same alert, resolved."""
    base: dict[str, Any] = {"status": "resolved", "ended_at": 1_763_900_600.0, "value": 1200.0}
    base.update(overrides)
    return notification(**base)
