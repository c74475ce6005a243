"""The `alerting:` section of the config file: rules, SLOs, channels, routes, silences, caps.

Everything here is data validated by pydantic; errors name the key and say how to fix it.
Durations are written as `30s`, `5m`, `1h30m`, `7d` (or plain seconds); ratio thresholds as
`0.05` or `5%`; times as unix seconds or ISO-8601. For example:

    alerting:
      interval: 5s
      channels:
        - {type: slack, name: team, webhook_url: "${SLACK_WEBHOOK_URL}"}
        - {type: pagerduty, name: pager, routing_key: "${PD_KEY}", severities: [critical]}
      routes:
        - {matchers: ["severity=critical"], channels: [pager], continue: true}
        - {channels: [team]}
      rules:
        - id: checkout-timeouts
          kind: outcome_ratio          # outcome_ratio latency sum count score absence anomaly
          outcomes: [timeout]
          filters: {service: checkout, scope: requests}
          group_by: route
          window: 5m
          threshold: 10%
          for: 2m
          severity: critical
          annotations: {summary: "{route}: {value} timed out", runbook_url: https://…}
      slos:
        - {id: checkout-latency, sli: latency, latency_threshold_ms: 8000, objective: 99%,
           filters: {service: checkout, scope: requests}}
      silences:
        - {matchers: ["service=checkout"], starts_at: 2026-03-01T02:00:00Z,
           ends_at: 2026-03-01T04:00:00Z, comment: migration}
      maintenance:
        - {name: nightly, days: [sun], start: "02:00", duration: 1h}
      reports: {daily: true, at: "08:00", channels: [team]}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from watchkeeper.alerting._notification import Severity
from watchkeeper.config import describe
from watchkeeper.errors import ConfigError, ValidationError
from watchkeeper.store import Scope

if TYPE_CHECKING:
    from watchkeeper.config import Config

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_ID = r"^[A-Za-z0-9_.:-]+$"
#: Longest duration anything takes (a window, a period, a retention): ten years.
MAX_DURATION_S = 10 * 365 * 86400.0


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90"`, `"5m"`, `"1h30m"` or `"7d"`; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like 30s, 5m, 1h, 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        if not value <= MAX_DURATION_S:  # NaN and inf too
            raise ValueError("a duration is at most ten years (3650d)")
        return float(value)
    text = str(value).strip().replace(" ", "")
    try:
        return parse_duration(float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text[:40]!r} is not a duration: write it like 30s, 5m, 1h30m or 7d")
    return parse_duration(sum(float(n) * _UNIT_S[u] for n, u in parts))


def unix_seconds(value: Any) -> Any:
    """Unix seconds from a number or an ISO-8601 text (UTC unless it says otherwise)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and not _is_number(value):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not a time: use unix seconds or ISO-8601") from None
    else:
        return value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_ratio(value: Any) -> Any:
    """`"5%"` → 0.05; anything else is left to the number validator."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100.0
    return value


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


Duration = Annotated[float, BeforeValidator(parse_duration)]
Time = Annotated[float, BeforeValidator(unix_seconds)]
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
RuleKind = Literal[
    "outcome_ratio", "latency", "sum", "count", "score", "absence", "anomaly", "burn_rate"
]
#: Dimensions an alert may be grouped by: low-cardinality ones only (never user or session).
GroupBy = Literal[
    "service",
    "environment",
    "operation",
    "provider",
    "model",
    "route",
    "agent",
    "outcome",
    "feature",
    "error_type",
]
Statistic = Literal["p50", "p90", "p95", "p99", "avg", "max"]
SumField = Literal["cost_usd", "input_tokens", "output_tokens", "total_tokens"]
AnomalyMetric = Literal["cost_usd", "count", "errors", "timeouts", "total_tokens", "p95"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Filters(_Model):
    """Which spans a rule or SLO looks at; empty lists mean any."""

    scope: Scope = "spans"
    services: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()  # only for `count` and `sum` kinds
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _singular(cls, data: Any) -> Any:
        # People write `service: chat`; accept the singular and a bare string for every list.
        if not isinstance(data, Mapping):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            plural = key not in cls.model_fields and key + "s" in cls.model_fields
            name = key + "s" if plural else key
            listy = name not in ("scope", "name")
            out[name] = [value] if listy and isinstance(value, str) else value
        return out


class Rule(_Model):
    """One alert rule: a query over spans or scores, a threshold, and how to notify."""

    id: str = Field(min_length=1, max_length=120, pattern=_ID)
    name: str = ""
    description: str = ""
    kind: RuleKind
    enabled: bool = True
    project: str = "default"  # "*": every project (each evaluated on its own spans)
    filters: Filters = Filters()
    window: Duration = 300.0
    threshold: Annotated[float, BeforeValidator(parse_ratio)] = 0.0
    comparison: Comparison = ">"
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0
    severity: Severity = "warning"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}  # runbook_url, summary (a template), dashboard_url
    group_by: GroupBy | None = None
    max_groups: int = Field(default=20, ge=1, le=200)
    repeat_interval: Duration = 4 * 3600.0
    # How often to evaluate; default window/60 between the engine's interval and 5 minutes:
    # a 3-day window read every 5 s would rescan days of spans to move by a few seconds.
    evaluate_every: Duration | None = None
    channels: tuple[str, ...] = ()  # empty: the routes decide
    min_count: int = Field(default=0, ge=0)  # fewer spans: a ratio or percentile is not judged
    # kind-specific parameters
    outcomes: tuple[str, ...] = ("error",)  # outcome_ratio: the "bad" outcomes
    statistic: Statistic = "p95"  # latency
    field: SumField = "cost_usd"  # sum
    score_name: str = ""  # score
    # score: the mean value, or the share of passing (>= 0.5, or a label like "positive")
    # or failing scores (feedback given as labels has no mean)
    score_stat: Literal["avg", "pass_rate", "low_share"] = "avg"
    lookback: Duration = 86400.0  # absence: how far back a group counts as known
    metric: AnomalyMetric = "cost_usd"  # anomaly
    baseline_days: int = Field(default=7, ge=1, le=28)  # anomaly
    factor: float = Field(default=1.5, gt=0)  # anomaly: value > factor × baseline median
    min_value: float = 0.0  # anomaly: ignore values below this (noise at low traffic)
    slo: str = ""  # burn_rate: the SLO whose error budget burns (window = the long window)
    short_window: Duration = 0.0  # burn_rate: the short window that must burn too

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.window <= 0:
            raise ValueError("window must be longer than 0s (e.g. 5m)")
        if self.kind == "score" and not self.score_name:
            raise ValueError("a score rule needs score_name (e.g. hallucination, user_feedback)")
        if self.kind in ("score", "anomaly") and self.group_by is not None:
            raise ValueError(f"{self.kind} rules cannot use group_by; drop it")
        bad = set(self.outcomes) - {"success", "error", "timeout", "fallback", "rejected"}
        if bad:
            raise ValueError(f"unknown outcomes {sorted(bad)}: use error, timeout, fallback, ...")
        if self.kind == "burn_rate" and not (self.slo and 0 < self.short_window < self.window):
            raise ValueError("burn_rate needs slo and a short_window shorter than window")
        if self.kind == "absence" and self.lookback <= self.window:
            raise ValueError("absence: lookback must be longer than window (e.g. 24h vs 10m)")
        if self.is_ratio and not 0 <= self.threshold <= 1:
            raise ValueError(
                f"threshold {_percent(self.threshold)} is not a share: a {self.kind} rule "
                "compares a ratio, so write it from 0% to 100% (or 0 to 1)"
            )
        if not math.isfinite(self.threshold):
            raise ValueError("threshold must be a finite number")
        return self

    @property
    def is_ratio(self) -> bool:
        """Whether the threshold is a share (0 to 1): of spans, or of scores."""
        return self.kind == "outcome_ratio" or (self.kind == "score" and self.score_stat != "avg")

    @property
    def title(self) -> str:
        """The name people read: `name`, else the id."""
        return self.name or self.id


BurnWindow = tuple[float, float, float, Severity]  # long_s, short_s, factor, severity
#: Google SRE workbook multi-window multi-burn-rate table: page at 14.4× and 6×, ticket below.
DEFAULT_BURN_WINDOWS: tuple[BurnWindow, ...] = (
    (3600.0, 300.0, 14.4, "critical"),
    (6 * 3600.0, 1800.0, 6.0, "critical"),
    (86400.0, 7200.0, 3.0, "warning"),
    (3 * 86400.0, 6 * 3600.0, 1.0, "warning"),
)


class Slo(_Model):
    """A service level objective: an SLI, an objective over a period, burn-rate alerts."""

    id: str = Field(min_length=1, max_length=120, pattern=_ID)
    name: str = ""
    description: str = ""
    project: str = "default"
    filters: Filters = Filters(scope="requests")
    sli: Literal["availability", "latency"] = "availability"
    objective: Annotated[float, BeforeValidator(parse_ratio)] = Field(default=0.99, gt=0, lt=1)
    latency_threshold_ms: float | None = Field(default=None, gt=0)
    period: Duration = 30 * 86400.0
    alerting: bool = True
    channels: tuple[str, ...] = ()
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    min_count: int = Field(default=10, ge=0)  # fewer requests in a short window: no page

    @model_validator(mode="after")
    def _check(self) -> Slo:
        if self.sli == "latency" and self.latency_threshold_ms is None:
            raise ValueError("a latency SLO needs latency_threshold_ms (e.g. 8000)")
        return self

    @property
    def title(self) -> str:
        """The name people read."""
        return self.name or self.id


class Matcher(_Model):
    """A label matcher: `name=value`, `!=`, `=~` (regex, anchored) or `!~`."""

    name: str = Field(min_length=1)
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*\"?(.*?)\"?\s*", data)
        if m is None:
            raise ValueError(f"matcher {data!r}: write it like service=chat or model=~gpt-4.*")
        return {"name": m.group(1), "op": m.group(2), "value": m.group(3)}

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.name}: bad regular expression: {exc}") from None
        return self


class SilenceSpec(_Model):
    """A silence from the config file: matchers and a time window (unix seconds)."""

    matchers: tuple[Matcher, ...] = Field(min_length=1)
    starts_at: Time = 0.0
    ends_at: Time
    comment: str = ""
    created_by: str = "config"


class MaintenanceWindow(_Model):
    """A weekly window (UTC) during which matching alerts do not notify."""

    name: str = ""
    matchers: tuple[Matcher, ...] = ()  # empty: every alert
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    )  # fmt: skip
    start: str = Field(default="00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    duration: Duration = 3600.0


class Route(_Model):
    """Notification policy: alerts whose labels match go to these channels."""

    matchers: tuple[Matcher, ...] = ()
    channels: tuple[str, ...] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")


class ReportSchedule(_Model):
    """When digests are sent (UTC) and to which channels."""

    daily: bool = False
    weekly: bool = False
    at: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    channels: tuple[str, ...] = ()
    project: str = "default"


class AlertingConfig(_Model):
    """The whole `alerting:` section."""

    enabled: bool = True
    interval: Duration = Field(default=5.0, ge=1.0)
    starter_rules: bool = True  # load the rules shipped with the package
    rules: tuple[Rule, ...] = ()
    slos: tuple[Slo, ...] = ()
    channels: tuple[dict[str, Any], ...] = ()  # validated by alerting.channels
    routes: tuple[Route, ...] = ()
    default_channels: tuple[str, ...] | None = None  # None: every channel
    silences: tuple[SilenceSpec, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    inhibit_equal: tuple[str, ...] = ("service",)
    max_notifications_per_rule_per_hour: int = Field(default=20, ge=1)
    max_outbox: int = Field(default=100_000, ge=100)
    outbox_max_age: Duration = 3 * 86400.0
    retry_base: Duration = 1.0
    retry_max: Duration = 300.0
    example_traces: int = Field(default=5, ge=0, le=5)
    resolved_retention: Duration = 86400.0  # resolved alerts stay listed this long
    history_retention: Duration = 30 * 86400.0  # alert history and delivery log
    lease_ttl: Duration = Field(default=30.0, ge=2.0)  # replicas: how long a leader's lease lasts
    reports: ReportSchedule = ReportSchedule()


def load_starter_rules() -> list[dict[str, Any]]:
    """The rules shipped in `alerting/starter_rules.yaml`, as raw mappings."""
    text = resources.files("watchkeeper.alerting").joinpath("starter_rules.yaml").read_text()
    loaded = yaml.safe_load(text) or {}
    rules: list[dict[str, Any]] = loaded.get("rules", [])
    return rules


def load_alerting_config(
    raw: Mapping[str, Any] | None, source: str = "configuration"
) -> AlertingConfig:
    """Validate the raw `alerting:` mapping of the config file, then add the starter rules.

    Errors are one line, `source` first; rules are counted as the file lists them (the
    starter rules join after validation). A rule with a starter rule's id replaces it.
    """
    try:
        cfg = AlertingConfig.model_validate(dict(raw or {}))
    except PydanticValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc, 'alerting.')}") from None
    if cfg.starter_rules:
        own = {r.id for r in cfg.rules}
        starters = [Rule.model_validate(r) for r in load_starter_rules() if r.get("id") not in own]
        cfg = cfg.model_copy(update={"rules": (*starters, *cfg.rules)})
    _unique([r.id for r in cfg.rules], "rule", source)
    _unique([s.id for s in cfg.slos], "slo", source)
    return cfg


def alerting_of(config: Config) -> AlertingConfig:
    """The validated `alerting:` section of a loaded configuration (errors name its file)."""
    return load_alerting_config(config.alerting, config.source)


def _unique(ids: Sequence[str], what: str, source: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ConfigError(
                f"{source}: alerting: two {what}s share the id {i!r}; give each its own id"
            )
        seen.add(i)


def parse_rule(data: Mapping[str, Any]) -> Rule:
    """Validate one rule from the API; raise ValidationError saying what to fix."""
    try:
        return Rule.model_validate(dict(data))
    except PydanticValidationError as exc:
        raise ValidationError(
            f"invalid rule {data.get('id', '?')!s:.120}: {describe(exc)}"
        ) from None


def parse_silence(data: Mapping[str, Any]) -> SilenceSpec:
    """Validate one silence from the API."""
    try:
        return SilenceSpec.model_validate(dict(data))
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid silence: {describe(exc)}") from None


def rule_to_data(rule: Rule) -> dict[str, Any]:
    """A rule as the JSON/YAML mapping it was written as (aliases like `for`)."""
    return rule.model_dump(mode="json", by_alias=True)
