"""JSON shapes of the query API, derived from the store's dataclasses so they cannot drift.

The models document `/openapi.json`; the `*_json` functions build the matching plain dicts.
The store counts time in nanoseconds; the API in milliseconds (docs/api.md): each `*_ns` field
of a store dataclass is shown as `*_ms`, a number that may carry a fraction (a span's start,
to the microsecond), here and only here.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields
from typing import Any, get_args, get_type_hints

import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model

from watchkeeper.model import PayloadRow, ScoreRow, SpanRow
from watchkeeper.store import Activity, ScoreSummary, Summary


def _fields_of(cls: Any) -> dict[str, Any]:
    hints = get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        default = ... if f.default is MISSING else f.default
        out[f.name] = (hints[f.name], default)
    return out


def _in_ms(cls: Any, leave: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of a store dataclass as the API shows them: `*_ns` as `*_ms` (float)."""
    out: dict[str, Any] = {}
    for name, (hint, default) in _fields_of(cls).items():
        if name in leave:
            continue
        if name.endswith("_ns"):
            nullable = type(None) in get_args(hint)
            name, hint = name[:-3] + "_ms", (float | None if nullable else float)
        out[name] = (hint, default)
    return out


def ms_json(row: Any) -> dict[str, Any]:
    """A store dataclass as JSON, each `*_ns` field as `*_ms`."""
    return {
        (k[:-3] + "_ms" if k.endswith("_ns") else k): (
            v / 1e6 if k.endswith("_ns") and v is not None else v
        )
        for k, v in asdict(row).items()
    }


SummaryOut: Any = create_model("Summary", success_rate=(float | None, None), **_in_ms(Summary))
GroupOut: Any = create_model("Group", __base__=SummaryOut, key=(str | None, None))
PointOut: Any = create_model(
    "Point", __base__=SummaryOut, t=(int, Field(description="bucket start, unix ms")),
    key=(str | None, None),
)  # fmt: skip
SpanOut: Any = create_model("Span", **_in_ms(SpanRow))


class EventOut(BaseModel):
    """A span event (an exception, a log line), as OTLP sent it."""

    name: str
    time_ms: float
    attributes: dict[str, Any]


PayloadOut: Any = create_model(
    "Payload", events=(list[EventOut], ...), **_in_ms(PayloadRow, leave=("events",))
)
TraceSpanOut: Any = create_model("TraceSpan", __base__=SpanOut, payload=(PayloadOut | None, None))
ScoreOut: Any = create_model("Score", **_in_ms(ScoreRow))
ActivityOut: Any = create_model("Activity", **_in_ms(Activity))
ScoreSummaryOut: Any = create_model("ScoreSummary", **_fields_of(ScoreSummary))


class Breakdown(BaseModel):
    """Summaries per value of a dimension."""

    by: str
    groups: list[GroupOut]


class Breakdowns(BaseModel):
    """Several breakdowns of the same spans, in the order asked."""

    items: list[Breakdown]


class Timeseries(BaseModel):
    """Summaries per time bucket (buckets without spans are left out)."""

    step_ms: int
    points: list[PointOut]


class HeatmapOut(BaseModel):
    """counts[i][j]: spans in bucket t[i] with latency <= bounds_ms[j] (last column: above all)."""

    step_ms: int
    t: list[int]
    bounds_ms: list[float] = Field(
        description="the bounds counted by: those asked for, or (a long or busy range read "
        "from the latency histograms) the histogram edges nearest them, at most 4.9% away"
    )
    counts: list[list[int]]


class SpanPage(BaseModel):
    """A page of spans, newest first."""

    items: list[SpanOut]
    next_cursor: str | None


class TraceOut(BaseModel):
    """A whole trace with payloads and scores."""

    trace_id: str
    spans: list[TraceSpanOut]
    scores: list[ScoreOut]
    span_count: int  # spans in the whole trace
    next_cursor: str | None = None  # the next page of spans (pass as `cursor`), if any


class Activities(BaseModel):
    """Sessions or users."""

    items: list[ActivityOut]


class Scores(BaseModel):
    """Scores, newest first."""

    items: list[ScoreOut]


class ScoreSummaries(BaseModel):
    """Aggregates per score name."""

    items: list[ScoreSummaryOut]


class Values(BaseModel):
    """Distinct values seen in the range."""

    items: list[str]


class ServiceValues(Values):
    """Services (`items`), with the environments and models seen in the same range."""

    environments: list[str]
    models: list[str]


class ScoreIn(BaseModel):
    """Feedback or an evaluation on a trace; give a value, a label, or both."""

    # The schema says "a value, a label, or both"; POST /api/v1/scores refuses neither.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["value"], "properties": {"value": {"type": "number"}}},
                {"required": ["label"], "properties": {"label": {"type": "string"}}},
            ]
        }
    )

    trace_id: str = Field(min_length=1, max_length=64)
    name: str = Field("user_feedback", min_length=1, max_length=200)
    value: float | None = Field(None, strict=True)  # a number: true is not 1
    label: str | None = Field(None, max_length=200)
    comment: str | None = Field(None, max_length=10_000)
    span_id: str | None = Field(None, max_length=64)
    user_id: str | None = Field(None, max_length=200)
    source: str = Field("feedback", max_length=50)


def summary_json(s: Summary) -> dict[str, Any]:
    """A summary as JSON, with its success rate."""
    return {**ms_json(s), "success_rate": s.success_rate}


def span_json(row: SpanRow) -> dict[str, Any]:
    """A span as JSON."""
    return ms_json(row)


def payload_json(row: PayloadRow) -> dict[str, Any]:
    """A span's payload as JSON, its events decoded (their times in ms)."""
    events = [
        {"name": e.get("name", ""), "time_ms": e.get("time_ns", 0) / 1e6,
         "attributes": e.get("attributes") or {}}
        for e in orjson.loads(row.events or "[]")
    ]  # fmt: skip
    return {**ms_json(row), "events": events}
