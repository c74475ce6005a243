"""JSON shapes of the alerting API, as /openapi.json documents them (docs/api.md).

Times follow the API's one unit: instants are integer milliseconds since the Unix epoch and
durations are milliseconds. Rule and SLO definitions are the exception docs/api.md names: they
are echoed as they are written (the configuration's language: "5m" or seconds), so a rule read
from the API can be sent back unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from watchkeeper.alerting import Rule, Slo

Millis = int  # an instant: milliseconds since the Unix epoch


def ms(seconds: float) -> Millis:
    """An instant in unix seconds as unix milliseconds."""
    return round(seconds * 1000)


def ms_or_none(seconds: float | None) -> Millis | None:
    """`ms`, keeping None."""
    return None if seconds is None else ms(seconds)


class RuleOut(Rule):
    """A rule as it is written, and where it comes from."""

    source: Literal["config", "api"] = Field(
        description="config: the config file (or an SLO's burn-rate rule); api: this API"
    )


class Rules(BaseModel):
    """Every rule of the project."""

    items: list[RuleOut]


class ObservationOut(BaseModel):
    """The verdict for one group of a rule."""

    key: str | None
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    breaching: bool
    count: int


class RuleTest(BaseModel):
    """A rule evaluated now; nothing stored, nobody notified."""

    rule_id: str
    at: Millis
    breaching: bool
    observations: list[ObservationOut]


class AlertOut(BaseModel):
    """One alert (one rule, one group) with what its rule says of it."""

    fingerprint: str
    rule_id: str
    project: str
    labels: dict[str, str]
    status: Literal["inactive", "pending", "firing", "resolved"]
    pending_since: Millis | None
    firing_since: Millis | None
    last_breach_at: Millis | None
    resolved_at: Millis | None
    last_notified_at: Millis | None
    value: float | None
    threshold: float | None
    trace_ids: list[str] = Field(description="example traces of the breach")
    # from the rule; absent when the rule is gone (its alert resolves at the next cycle)
    rule_name: str | None = None
    severity: str | None = None
    kind: str | None = None
    comparison: str | None = None
    summary: str | None = None


class Alerts(BaseModel):
    """Alerts, firing first, newest first."""

    items: list[AlertOut]


class HistoryEntry(BaseModel):
    """An alert event, and why it was muted, if it was."""

    id: int
    at: Millis
    project: str
    rule_id: str
    fingerprint: str
    event: Literal["firing", "resolved", "repeat"]
    severity: str
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    muted: str | None = Field(description="silence, inhibited, maintenance, cap... or null")


class History(BaseModel):
    """Alert events, newest first."""

    items: list[HistoryEntry]


class MatcherOut(BaseModel):
    """A label matcher."""

    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str


class SilenceOut(BaseModel):
    """A silence and whether it mutes now."""

    id: str
    matchers: list[MatcherOut]
    starts_at: Millis
    ends_at: Millis
    comment: str
    created_by: str
    active: bool


class Silences(BaseModel):
    """Active and future silences."""

    items: list[SilenceOut]


class SilenceIn(BaseModel):
    """A new silence: matchers, and `ends_at` or a `duration` (from `starts_at`, default now)."""

    matchers: list[str | MatcherOut] = Field(
        min_length=1, description='"service=chat", "model=~gpt-4.*", or {name, op, value}'
    )
    starts_at: int | str | None = Field(None, description="unix ms or ISO-8601; default now")
    ends_at: int | str | None = Field(None, description="unix ms or ISO-8601")
    duration: int | str | None = Field(None, description='milliseconds, or text like "2h"')
    comment: str = ""
    created_by: str = "api"


class Expired(BaseModel):
    """A silence that was ended."""

    id: str
    expired: bool


class ChannelOut(BaseModel):
    """A configured channel (never its secrets)."""

    name: str
    type: str
    severities: list[str] = Field(description="severities it takes; empty: every one")


class Channels(BaseModel):
    """Configured channels."""

    items: list[ChannelOut]


class ChannelTest(BaseModel):
    """Whether a test notification arrived."""

    ok: bool
    duration_ms: float | None = None
    error: str | None = None
    retryable: bool | None = None


class BurnWindow(BaseModel):
    """Burn rates over one long/short window pair, and whether both are over the factor."""

    long_window_ms: int
    short_window_ms: int
    factor: float
    severity: str
    long_burn_rate: float | None
    short_burn_rate: float | None
    firing: bool


class BurnPoint(BaseModel):
    """Error budget left at `t`, counted from the start of the period."""

    t: Millis
    total: int
    bad: int
    budget_remaining: float | None


class SloOut(Slo):
    """An SLO as it is written, with its state over the period."""

    total: int
    bad: int
    sli_value: float | None
    budget_remaining: float | None
    burn_rate: float | None
    burn_rates: list[BurnWindow]


class SloDetail(SloOut):
    """An SLO with its burn-down over the period, oldest first."""

    burndown: list[BurnPoint]


class Slos(BaseModel):
    """The project's SLOs (without burn-down series)."""

    items: list[SloOut]


class AttemptOut(BaseModel):
    """One delivery attempt."""

    at: Millis
    result: str
    error: str | None
    duration_ms: float


class NotificationBody(BaseModel):
    """What was sent to the channel."""

    rule_id: str
    rule_name: str
    status: str
    severity: str
    fingerprint: str
    summary: str
    description: str
    value: float | None
    threshold: float | None
    comparison: str
    unit: str
    window_ms: int
    labels: dict[str, str]
    annotations: dict[str, str]
    started_at: Millis
    ended_at: Millis | None
    url: str
    trace_ids: list[str]
    trace_url_template: str
    kind: Literal["alert", "test", "digest", "summary"]
    body_markdown: str


class NotificationOut(BaseModel):
    """An outbox entry with every delivery attempt."""

    id: int
    created_at: Millis
    project: str
    channel: str
    rule_id: str
    fingerprint: str
    notification: NotificationBody
    state: str
    attempts: int
    next_attempt_at: Millis
    last_error: str | None
    delivered_at: Millis | None
    attempt_log: list[AttemptOut]


class Notifications(BaseModel):
    """The outbox, newest first."""

    items: list[NotificationOut]
