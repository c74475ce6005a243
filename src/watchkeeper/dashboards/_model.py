"""A dashboard as data: sections of panels, each panel a few queries (PromQL over the metric
store, or a measure of spans), laid out on Grafana's 24-column grid.

One description serves three readers: the UI draws it (the Infrastructure page is a shipped
dashboard), the API saves it as YAML, and the Grafana export turns it into a dashboard JSON
model. A section may name the metrics it `requires`: the UI shows its panels when any of
them exists, and its `missing` text (what to install) when none does.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeeper.query import PromQLError, parse_promql

#: Units a panel's values are in (Grafana's unit ids, so the export keeps them).
UNITS = ("short", "none", "percentunit", "bytes", "Bps", "s", "ms", "reqps", "ops",
         "currencyUSD")  # fmt: skip
#: What a span query measures per time bucket (fields of the span API's summaries).
SPAN_MEASURES = ("count", "errors", "timeouts", "fallbacks", "rejected", "success_rate",
                 "p50_ms", "p95_ms", "p99_ms", "avg_ms", "max_ms", "input_tokens",
                 "output_tokens", "cost_usd")  # fmt: skip
SPAN_BY = ("service", "environment", "operation", "provider", "model", "outcome")
#: Variables a dashboard may have; each filters the queries that mention it ($name).
VARIABLES = ("service", "environment", "job", "instance")
GRID_COLUMNS = 24
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_VAR = re.compile(r"\$(service|environment|job|instance)\b")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpanQuery(_Part):
    """A measure of spans per time bucket (the span API's /timeseries), optionally by a
    dimension; the dashboard's service and environment variables filter it."""

    scope: Literal["requests", "spans", "llm"] = "requests"
    measure: Literal[SPAN_MEASURES] = "count"  # type: ignore[valid-type]
    by: Literal[SPAN_BY] | None = None  # type: ignore[valid-type]


class Query(_Part):
    """One query of a panel: PromQL or a span measure, and its legend (`{{label}}`)."""

    promql: str | None = Field(default=None, min_length=1, max_length=10_000)
    spans: SpanQuery | None = None
    legend: str = Field(default="", max_length=500)

    @field_validator("promql")
    @classmethod
    def _parses(cls, v: str | None) -> str | None:
        if v is None:
            return v
        # Variables are Grafana's: `$service` inside a regex matcher; parse with a value.
        try:
            parse_promql(_VAR.sub(".*", v))
        except PromQLError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Query:
        if (self.promql is None) == (self.spans is None):
            raise ValueError("a query is either `promql: EXPR` or `spans: {measure: ...}`")
        return self


class Grid(_Part):
    """Where a panel sits: x and w in 24 columns, y and h in rows (Grafana's gridPos)."""

    x: int = Field(default=0, ge=0, lt=GRID_COLUMNS)
    y: int = Field(default=0, ge=0, le=10_000)
    w: int = Field(default=12, ge=1, le=GRID_COLUMNS)
    h: int = Field(default=8, ge=2, le=40)

    @model_validator(mode="after")
    def _fits(self) -> Grid:
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w must be at most {GRID_COLUMNS} (got {self.x} + {self.w})")
        return self


class Panel(_Part):
    """A chart (`timeseries`), a latest value (`stat`), or the latest value of each series
    with its labels (`table`; `value_map` names values, e.g. up: 1 -> "up")."""

    title: str = Field(min_length=1, max_length=200)
    kind: Literal["timeseries", "stat", "table"] = "timeseries"
    unit: Literal[UNITS] = "short"  # type: ignore[valid-type]
    queries: list[Query] = Field(min_length=1, max_length=8)
    grid: Grid = Grid()
    description: str = Field(default="", max_length=2000)
    stack: bool = False
    empty: str = Field(default="", max_length=500)  # said when the queries find nothing
    value_map: dict[str, str] = Field(default={}, max_length=50)


class Section(_Part):
    """Panels under a title; shown when any `requires` metric exists (or always)."""

    title: str = Field(default="", max_length=200)
    requires: list[str] = Field(default=[], max_length=20)
    missing: str = Field(default="", max_length=2000)
    panels: list[Panel] = Field(default=[], max_length=100)


class Dashboard(_Part):
    """A dashboard: a title, its variables and its sections of panels."""

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    variables: list[Literal[VARIABLES]] = []  # type: ignore[valid-type]
    sections: list[Section] = Field(default=[], max_length=50)
    tags: list[str] = Field(default=[], max_length=20)
    # the project whose pages show it; "*" (the default): every project's
    project: str = Field(default="*", min_length=1, max_length=200)


def parse_dashboard(data: Any) -> Dashboard:
    """A dashboard from its YAML/JSON mapping; pydantic's ValidationError when invalid."""
    return Dashboard.model_validate(data)
