"""JSON shapes of the alerting API, as /openapi.json documents them (docs/api.md).

Times follow the API's one unit: instants are integer milliseconds since the Unix epoch and
durations are milliseconds. The engine and the config file count in seconds; the conversion
happens here, at the edge, and only here. A duration in a rule body may also be written as
text ("5m"), as in the config file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model

from watchkeeper.alerting import Rule, Slo, parse_duration
from watchkeeper.alerting.kinds import RULE_KINDS
from watchkeeper.errors import ValidationError
from watchkeeper.server._params import TIME_SCHEMA as TIME
from watchkeeper.server._params import published_as

Millis = int  # an instant: milliseconds since the Unix epoch


def _is_duration(annotation: Any, metadata: tuple[Any, ...] = ()) -> bool:
    """Whether a field is a `Duration` of the alerting config (seconds there)."""
    if any(getattr(m, "func", None) is parse_duration for m in metadata):
        return True
    args = get_args(annotation)  # Annotated[float, validator], or a union holding one
    return bool(args) and (_is_duration(None, args[1:]) or any(_is_duration(a) for a in args))


def _durations(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        f.alias or name
        for name, f in model.model_fields.items()
        if _is_duration(f.annotation, tuple(f.metadata))
    )


RULE_DURATIONS = _durations(Rule).union(*(_durations(k) for k in RULE_KINDS))
SLO_DURATIONS = _durations(Slo)


def durations_to_ms(data: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """A rule or SLO as the config file has it (seconds) with its durations in milliseconds."""
    out = dict(data)
    for k in names & out.keys():
        if isinstance(out[k], int | float) and not isinstance(out[k], bool):
            out[k] = round(out[k] * 1000, 3)
    return out


_BARE_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def durations_from_ms(data: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """A rule body of the API (durations as milliseconds or text) as the config reads it."""
    out = dict(data)
    for k in names & out.keys():
        if isinstance(out[k], str) and _BARE_NUMBER.fullmatch(out[k].strip()):
            # the config file reads "300" as seconds, a JSON number here is milliseconds:
            # text without a unit could mean either
            raise ValidationError(
                f"{k}: {out[k]!r} has no unit; send a number (milliseconds) or text with a "
                'unit ("300ms", "30s", "5m")'
            )
        if isinstance(out[k], int | float) and not isinstance(out[k], bool):
            seconds = out[k] / 1000.0
            # a positive duration stays positive (5e-324 ms is 0.0 s in floats)
            out[k] = math.nextafter(0.0, 1.0) if out[k] > 0 and seconds == 0 else seconds
    return out


def _as_shown(model: type[BaseModel], durations: frozenset[str]) -> dict[str, Any]:
    """The fields of a config model as the API shows them: each always present, durations
    as milliseconds, and none of the config's checks (they count in seconds)."""
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        if (f.alias or name) in durations:
            nullable = f.default is None
            out[name] = (
                float | None if nullable else float,
                Field(alias=f.alias, description="milliseconds"),
            )
        else:
            out[name] = (f.annotation, Field(alias=f.alias, description=f.description))
    return out


_SOURCE: Any = Literal["config", "api"]
_SHOWN = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class RuleDisplay(BaseModel):
    """How the UI shows a rule, said by its kind."""

    watches: str = Field(description='what it watches ("p95 latency")')
    unit: str = Field(description='the unit of its value and threshold ("ms", "%", "USD")')
    condition: str | None = Field(
        description='when it is not `value <comparison> threshold` ("> 1.5× baseline")'
    )


def _rule_out(kind: type[Rule]) -> Any:
    """The answer's model of one rule kind: its fields as the API shows them."""
    return create_model(
        f"{kind.__name__}Out",
        __config__=_SHOWN,
        __doc__=f"A {kind.__name__}, where it comes from and how it is shown; durations in ms.",
        source=(
            _SOURCE,
            Field(
                description="config: the config file (or an SLO's burn-rate rule); api: this API"
            ),
        ),
        display=(RuleDisplay, ...),
        **_as_shown(kind, RULE_DURATIONS),
    )


#: A rule of any kind, told apart by `kind`.
RuleOut: Any = Annotated[
    Union[tuple(_rule_out(k) for k in RULE_KINDS)],  # noqa: UP007  (a union built at run time)
    Field(discriminator="kind"),
]


_TEN_YEARS_MS = 3650 * 86_400_000  # the longest duration the config takes


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """`node` with each local `$ref` replaced by its definition (a body schema stands alone)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def body_schema(model: type[BaseModel], durations: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of a request body, durations in milliseconds (the config's defaults,
    in seconds, left out)."""
    generated = model.model_json_schema()
    schema: dict[str, Any] = _inline(generated, generated.pop("$defs", {}))
    props = schema["properties"]
    for name in durations & props.keys():
        shown: dict[str, Any] = {
            "type": "number",
            "minimum": 0,
            "maximum": _TEN_YEARS_MS,
            "description": 'milliseconds, or text like "5m"',
        }
        if "exclusiveMinimum" in props[name]:  # a duration that must be longer than 0
            shown["exclusiveMinimum"] = 0
        props[name] = {"anyOf": [shown, {"type": "null"}]} if "anyOf" in props[name] else shown
    return schema


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` declaring a route's JSON body (read by the route itself)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


#: What the API answers with beside a rule's own fields; read and dropped from a body.
RULE_READ_ONLY = ("source", "display")


def rule_body() -> dict[str, Any]:
    """The JSON Schema of a rule body: one of the kinds (each with its own parameters)."""
    kinds = []
    for kind in RULE_KINDS:
        schema = body_schema(kind, RULE_DURATIONS)
        schema["required"] = [*schema["required"], "kind"]
        schema["properties"]["window"]["exclusiveMinimum"] = 0
        # read and dropped: a rule belongs to the request's project (any value is taken)
        schema["properties"]["project"] = {"description": "ignored: the request's project"}
        for name in RULE_READ_ONLY:  # a rule read with GET can be sent back as it is
            schema["properties"][name] = {"readOnly": True, "description": "ignored: answered"}
        if not kind.groupable:  # judged as a whole: group_by stays null
            schema["properties"]["group_by"] = {"type": "null", "description": "not grouped"}
        kinds.append(schema)
    return {"oneOf": kinds}


class Rules(BaseModel):
    """Every rule of the project."""

    items: list[RuleOut]


class SkippedRule(BaseModel):
    """A rule of a rules file that was not loaded (or loaded with a warning), and why."""

    name: str
    reason: str


class RulesFileOut(BaseModel):
    """What a Prometheus rules file became."""

    rules: list[RuleOut]
    skipped: list[SkippedRule]
    dry_run: bool


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


#: A matcher as text, as the alerting config reads it: a name, an operator, the rest of the
#: line (a regular expression after `=~`/`!~`, whose syntax is checked there).
MATCHER_PATTERN = r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)[^\n]*$"


class MatcherIn(BaseModel):
    """A label matcher as an object."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str = ""


class SilenceIn(BaseModel):
    """A new silence: matchers, and either `ends_at` or a `duration` (from `starts_at`,
    default now).

    What no JSON Schema says is answered with a 400 naming it: the end must come after the
    start (`starts_at` + `duration` too, and before 2262), and after `=~`/`!~` a matcher's
    value must be a regular expression."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["ends_at"]}, {"required": ["duration"]}]},
    )

    matchers: list[Annotated[str, Field(pattern=MATCHER_PATTERN)] | MatcherIn] = Field(
        min_length=1, description='"service=chat", "model=~gpt-4.*", or {name, op, value}'
    )
    starts_at: int | str | None = Field(
        None, description="unix ms or ISO-8601; default now", json_schema_extra=published_as(TIME)
    )
    ends_at: int | str | None = Field(
        None, description="unix ms or ISO-8601", json_schema_extra=published_as(TIME)
    )
    duration: int | str | None = Field(
        None,
        description='milliseconds (or text like "2h")',
        json_schema_extra=published_as(
            {"type": "number", "exclusiveMinimum": 0, "maximum": _TEN_YEARS_MS}
        ),
    )
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


SloOut: Any = create_model(
    "SloOut",
    __config__=_SHOWN,
    __doc__="An SLO (its period in milliseconds) with its state over the period.",
    total=(int, ...),
    bad=(int, ...),
    sli_value=(float | None, ...),
    budget_remaining=(float | None, ...),
    burn_rate=(float | None, ...),
    burn_rates=(list[BurnWindow], ...),
    **_as_shown(Slo, SLO_DURATIONS),
)


SloDetail: Any = create_model(
    "SloDetail",
    __base__=SloOut,
    __doc__="An SLO with its burn-down over the period, oldest first.",
    burndown=(list[BurnPoint], ...),
)


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
