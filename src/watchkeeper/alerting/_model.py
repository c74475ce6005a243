"""What rules and SLOs are made of: durations, ratios and times as people write them, the
filters on spans, the `Rule` every kind extends, and the `Slo`.

A rule kind is a subclass of `Rule` in `watchkeeper.alerting.kinds` holding its own
parameters and what it means (its query, its evaluation, its Prometheus form, how it is shown);
this module knows none of them.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo

from watchkeeper.alerting._notification import Severity
from watchkeeper.store import Scope

if TYPE_CHECKING:
    from watchkeeper.alerting._evaluate import Observation, RuleData
    from watchkeeper.alerting._fetch import QueryContext, Reader
    from watchkeeper.alerting._promql import Expression
    from watchkeeper.store import SpanFilter

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


def required_in_schema(*names: str) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` of a kind whose fields `names` have a default that only stands for
    "not given" (its `check` refuses it, saying what to give): the schema requires them."""

    def publish(schema: dict[str, Any]) -> None:
        schema["required"] = [*schema.get("required", ()), *names]

    return publish


def percent(share: float) -> str:
    return f"{share * 100:g}%"


Duration = Annotated[float, BeforeValidator(parse_duration)]
Time = Annotated[float, BeforeValidator(unix_seconds)]
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
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


def _takes_numbers(annotation: Any) -> bool:
    """Whether a field takes numbers (int, float, or one of them or None) and no booleans."""
    if annotation in (int, float):
        return True
    args = set(get_args(annotation))
    return bool(args & {int, float}) and bool not in args and args <= {int, float, type(None)}


def _wrong_json_type(f: FieldInfo, value: Any) -> str | None:
    """What a field takes when `value` is of a JSON type it does not (pydantic's lax mode
    reads `true` as 1, `0` as false and `"5"` as 5): None when the type fits."""
    if f.annotation is bool and not isinstance(value, bool):
        return "true or false"
    if _takes_numbers(f.annotation):
        parses_text = any(isinstance(m, BeforeValidator) for m in f.metadata)  # "5m", "5%"
        if isinstance(value, bool) or (isinstance(value, str) and not parses_text):
            return "a number"
    return None


#: The validation context of a body of the JSON API: each value of the JSON type its schema
#: says (the config file and the environment keep pydantic's reading: `"20"` is 20 there).
JSON_BODY = {"json_body": True}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data: Any, info: ValidationInfo) -> Any:
        # as the schema says: a threshold of `true` or `enabled: 0` is a mistake, not 1 or false
        if not isinstance(data, Mapping) or not (info.context or {}).get("json_body"):
            return data
        for name, f in cls.model_fields.items():
            key = f.alias or name
            wanted = _wrong_json_type(f, data[key]) if key in data else None
            if wanted is not None:
                raise ValueError(f"{key} is {wanted}, not {_shown(data[key])}")
        return data


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)[:40]


def _lists_take_text(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of `Filters`: each list also takes one text (`services: chat`)."""
    for prop in schema["properties"].values():
        if prop.get("type") == "array":
            array = {"type": prop.pop("type"), "items": prop.pop("items")}
            prop["anyOf"] = [array, array["items"]]


class Filters(_Model):
    """Which spans a rule or SLO looks at; empty lists mean any."""

    model_config = ConfigDict(json_schema_extra=_lists_take_text)

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
    """One alert rule: a query over spans or scores, a threshold, and how to notify.

    The fields here are every kind's; a kind (`watchkeeper.alerting.kinds`) subclasses it
    with `kind: Literal[...]`, its own parameters and its meaning. Never instantiated itself.
    """

    #: How the kind is named and explained where kinds are listed (API, UI, docs).
    label: ClassVar[str] = ""
    about: ClassVar[str] = ""
    #: The kind's own parameters in a working rule (without id and kind), for docs and editors.
    example: ClassVar[dict[str, Any]] = {}
    #: Whether the kind judges each group of `group_by` on its own.
    groupable: ClassVar[bool] = True

    id: str = Field(min_length=1, max_length=120, pattern=_ID)
    name: str = ""
    description: str = ""
    kind: str
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

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.window <= 0:
            raise ValueError("window must be longer than 0s (e.g. 5m)")
        self.check()
        if not self.groupable and self.group_by is not None:
            raise ValueError(f"{self.kind} rules cannot use group_by; drop it")
        if self.is_ratio and not 0 <= self.threshold <= 1:
            raise ValueError(
                f"threshold {percent(self.threshold)} is not a share: a {self.kind} rule "
                "compares a ratio, so write it from 0% to 100% (or 0 to 1)"
            )
        if not math.isfinite(self.threshold):
            raise ValueError("threshold must be a finite number")
        return self

    def check(self) -> None:
        """Raise ValueError saying what to fix when the kind's parameters do not fit together."""

    @property
    def is_ratio(self) -> bool:
        """Whether the threshold is a share (0 to 1): of spans, or of scores."""
        return False

    @property
    def percentiles(self) -> bool:
        """Whether its value needs latency percentiles (p50-p99): without, the store only
        sums (much cheaper over long or busy windows)."""
        return False

    @property
    def title(self) -> str:
        """The name people read: `name`, else the id."""
        return self.name or self.id

    @abstractmethod
    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """Ask the store for everything `observe` reads at `now` (the I/O edge)."""

    @abstractmethod
    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """The verdict per group on what `query` returned (pure)."""

    def examples(
        self, labels: Mapping[str, str], now: float, ctx: QueryContext
    ) -> SpanFilter | None:
        """Spans that show why an alert of this rule fires (None: the kind has none)."""
        return None

    def unit(self) -> str:
        """The unit people read a value in: %, ms, s, USD, x, or none."""
        return ""

    @abstractmethod
    def watches(self) -> str:
        """What the rule looks at, in a few words (`p95 latency`, `share of error/timeout`)."""

    def condition(self) -> str | None:
        """How it fires, when that is not `value <comparison> threshold` (None otherwise)."""
        return None

    def promql(self) -> Expression | str:
        """The rule as a Prometheus alert condition, or why the exposed metrics cannot say it."""
        return f"{self.kind} rules have no Prometheus form"

    def references(self, slos: Mapping[str, Slo]) -> str | None:
        """What the rule names that does not exist (None: nothing)."""
        return None

    def needs_metrics(self) -> tuple[str, ...]:
        """Metrics a project must hold for the rule to apply to it (none: always applies)."""
        return ()

    def render_annotations(
        self, labels: Mapping[str, str], value: float | None
    ) -> dict[str, str] | None:
        """The annotations of one alert, when the kind expands them itself (None: they are
        Watchkeeper's `{label}` templates, rendered by the notifier)."""
        return None


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
