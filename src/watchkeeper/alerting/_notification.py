"""What a channel is asked to deliver, and how a delivery can fail.

The engine builds `Notification`s; each channel module renders one into its wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Status = Literal["firing", "resolved"]
Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert state change (or a test, or a digest) for one channel."""

    rule_id: str
    rule_name: str
    status: Status
    severity: Severity
    fingerprint: str  # stable id of (rule, group labels): dedup key, thread key
    summary: str  # one line a person reads first
    description: str = ""
    value: float | None = None  # observed value
    threshold: float | None = None
    comparison: str = ">"  # how value is compared with threshold
    unit: str = ""  # "%", "ms", "USD", ...
    window_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)  # runbook_url, dashboard, ...
    started_at: float = 0.0  # unix seconds the alert began firing
    ended_at: float | None = None  # set when resolved
    url: str = ""  # link to the alert in the UI
    trace_ids: tuple[str, ...] = ()  # up to five example traces
    trace_url_template: str = ""  # "{base}/traces/{trace_id}"
    kind: Literal["alert", "test", "digest", "summary"] = "alert"
    body_markdown: str = ""  # for digests and held-back summaries: the whole text


class DeliveryError(Exception):
    """A delivery failed; `retryable` says whether to try again, `retry_after` when."""

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(Protocol):
    """A notification channel: renders and sends; raises DeliveryError on failure."""

    name: str

    @property
    def type(self) -> str:
        """The channel type (`slack`, `email`, ...)."""
        ...

    async def send(self, notification: Notification) -> None:
        """Deliver one notification, or raise DeliveryError."""
        ...
