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

import glob
import logging
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from watchkeeper.alerting._model import (
    DEFAULT_BURN_WINDOWS,
    JSON_BODY,
    Duration,
    Filters,
    Rule,
    Slo,
    Time,
    _Model,
    parse_duration,
    unix_seconds,
)
from watchkeeper.alerting._rules_file import load_rules_file
from watchkeeper.alerting.kinds import RuleField, validate_rule
from watchkeeper.config import describe
from watchkeeper.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from watchkeeper.config import Config

log = logging.getLogger("watchkeeper.alerting")

__all__ = [
    "DEFAULT_BURN_WINDOWS",
    "AlertingConfig",
    "Filters",
    "MaintenanceWindow",
    "Matcher",
    "ReportSchedule",
    "Route",
    "Rule",
    "RuleFile",
    "SilenceSpec",
    "Slo",
    "alerting_of",
    "load_alerting_config",
    "load_starter_rules",
    "parse_duration",
    "parse_rule",
    "parse_silence",
    "rule_to_data",
    "unix_seconds",
]


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
    created_by: str = Field(default="config", max_length=200)  # the column holds 200


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


#: The default lease, in evaluation intervals: 4 x 5 s = 20 s, so a dead leader is replaced
#: within 25 s at the defaults (`AlertingConfig.failover_within`), and three renewals in a row
#: may be late before the lease is lost.
LEASE_INTERVALS = 4


class RuleFile(_Model):
    """A Prometheus rules file to load: a path or a glob (relative to the config file),
    and the project its rules watch."""

    path: str = Field(min_length=1)
    project: str = "default"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class AlertingConfig(_Model):
    """The whole `alerting:` section."""

    enabled: bool = True
    interval: Duration = Field(default=5.0, ge=1.0)
    starter_rules: bool = True  # load the rules shipped with the package
    rules: tuple[RuleField, ...] = ()
    # Prometheus rules files (`groups:`), loaded as they are: alerts become promql rules
    rule_files: tuple[RuleFile, ...] = ()
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
    # Replicas: how long a leader's lease lasts unrenewed (it renews every `interval`);
    # None: LEASE_INTERVALS intervals (20 s at the default interval). See `failover_within`.
    lease_ttl: Duration | None = Field(default=None, ge=2.0)
    reports: ReportSchedule = ReportSchedule()

    @model_validator(mode="after")
    def _lease_outlives_renewals(self) -> AlertingConfig:
        if self.lease_ttl is not None and self.lease_ttl < 2 * self.interval:
            raise ValueError(
                f"lease_ttl ({self.lease_ttl:g}s) must be at least twice the interval "
                f"({self.interval:g}s): the leader renews its lease once per interval, and one "
                "late renewal must not hand the lease to another replica"
            )
        return self

    @property
    def lease_seconds(self) -> float:
        """How long the evaluation lease lasts unrenewed."""
        return self.lease_ttl if self.lease_ttl is not None else LEASE_INTERVALS * self.interval

    @property
    def failover_within(self) -> float:
        """The longest a replica waits to take over from a leader that died: the dead one's
        lease runs out at most `lease_seconds` after its last renewal, and the others try
        once per `interval` (plus the time of the first cycle they then run)."""
        return self.lease_seconds + self.interval


def load_starter_rules() -> list[dict[str, Any]]:
    """The rules shipped in `alerting/starter_rules.yaml`, as raw mappings."""
    text = resources.files("watchkeeper.alerting").joinpath("starter_rules.yaml").read_text()
    loaded = yaml.safe_load(text) or {}
    rules: list[dict[str, Any]] = loaded.get("rules", [])
    return rules


def load_alerting_config(
    raw: Mapping[str, Any] | None, source: str = "configuration", base_dir: Path | None = None
) -> AlertingConfig:
    """Validate the raw `alerting:` mapping of the config file, then add the starter rules
    and the rules of its `rule_files` (relative to `base_dir`, default the working directory).

    Errors are one line, `source` first; rules are counted as the file lists them (the
    starter rules join after validation). A rule with a starter rule's id replaces it.
    """
    try:
        cfg = AlertingConfig.model_validate(dict(raw or {}))
    except PydanticValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc, 'alerting.')}") from None
    if cfg.starter_rules:
        own = {r.id for r in cfg.rules}
        starters = [validate_rule(r) for r in load_starter_rules() if r.get("id") not in own]
        cfg = cfg.model_copy(update={"rules": (*starters, *cfg.rules)})
    if cfg.rule_files:
        loaded = _rules_of_files(cfg.rule_files, base_dir or Path.cwd(), source)
        cfg = cfg.model_copy(update={"rules": (*cfg.rules, *loaded)})
    _unique([r.id for r in cfg.rules], "rule", source)
    _unique([s.id for s in cfg.slos], "slo", source)
    return cfg


def _rules_of_files(files: Sequence[RuleFile], base: Path, source: str) -> list[Rule]:
    """The alerting rules of Prometheus rules files; what is left out is logged."""
    out: list[Rule] = []
    for spec in files:
        pattern = Path(spec.path).expanduser()
        pattern = pattern if pattern.is_absolute() else base / pattern
        paths = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else [pattern]
        for path in map(Path, paths):
            try:
                text = path.read_text(encoding="utf-8")
                loaded = load_rules_file(text, spec.project, f"rules file {path}")
            except OSError as exc:
                raise ConfigError(
                    f"{source}: alerting.rule_files: cannot read {path} ({exc.strerror})"
                ) from None
            except ValidationError as exc:
                raise ConfigError(f"{source}: alerting.rule_files: {exc}") from None
            for name, reason in loaded.skipped:
                log.warning("rules file %s: %s: %s", path, name, reason)
            out.extend(loaded.rules)
    return out


def alerting_of(config: Config) -> AlertingConfig:
    """The validated `alerting:` section of a loaded configuration (errors name its file;
    its rules files are read relative to it)."""
    prefix = "config file "
    base = Path(config.source[len(prefix) :]).parent if config.source.startswith(prefix) else None
    return load_alerting_config(config.alerting, config.source, base)


def _unique(ids: Sequence[str], what: str, source: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ConfigError(
                f"{source}: alerting: two {what}s share the id {i!r}; give each its own id"
            )
        seen.add(i)


def parse_rule(data: Mapping[str, Any], *, json_body: bool = False) -> Rule:
    """Validate one rule from the API (`json_body`: as sent, each value of the JSON type its
    schema says) or the meta DB; raise ValidationError saying what to fix."""
    try:
        return validate_rule(dict(data), JSON_BODY if json_body else None)
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
