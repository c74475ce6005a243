"""JSON shapes of the query API, derived from the store's dataclasses so they cannot drift.

The models document `/openapi.json`; the `*_json` functions build the matching plain dicts.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields
from typing import Any, get_type_hints

from pydantic import BaseModel, Field, create_model

from watchkeeper.model import PayloadRow, ScoreRow, SpanRow
from watchkeeper.store import Activity, ScoreSummary, Summary


def _fields_of(cls: Any) -> dict[str, Any]:
    hints = get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        default = ... if f.default is MISSING else f.default
        out[f.name] = (hints[f.name], default)
    return out


SummaryOut: Any = create_model("Summary", success_rate=(float | None, None), **_fields_of(Summary))
GroupOut: Any = create_model("Group", __base__=SummaryOut, key=(str | None, None))
PointOut: Any = create_model(
    "Point", __base__=SummaryOut, t=(int, Field(description="bucket start, unix ms")),
    key=(str | None, None),
)  # fmt: skip
SpanOut: Any = create_model(
    "Span", duration_ms=(float, ...), start_ms=(float, ...), **_fields_of(SpanRow)
)
PayloadOut: Any = create_model("Payload", **_fields_of(PayloadRow))
TraceSpanOut: Any = create_model("TraceSpan", __base__=SpanOut, payload=(PayloadOut | None, None))
ScoreOut: Any = create_model("Score", **_fields_of(ScoreRow))
ActivityOut: Any = create_model("Activity", **_fields_of(Activity))
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

    step_s: int
    points: list[PointOut]


class HeatmapOut(BaseModel):
    """counts[i][j]: spans in bucket t[i] with latency <= bounds_ms[j] (last column: above all)."""

    step_s: int
    t: list[int]
    bounds_ms: list[float]
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

    trace_id: str = Field(min_length=1, max_length=64)
    name: str = Field("user_feedback", min_length=1, max_length=200)
    value: float | None = None
    label: str | None = Field(None, max_length=200)
    comment: str | None = Field(None, max_length=10_000)
    span_id: str | None = Field(None, max_length=64)
    user_id: str | None = Field(None, max_length=200)
    source: str = Field("feedback", max_length=50)


def summary_json(s: Summary) -> dict[str, Any]:
    """A summary as JSON, with its success rate."""
    return {**asdict(s), "success_rate": s.success_rate}


def span_json(row: SpanRow) -> dict[str, Any]:
    """A span as JSON, with `duration_ms` and `start_ms` for convenience."""
    return {**asdict(row), "duration_ms": row.duration_ns / 1e6, "start_ms": row.start_ns / 1e6}
