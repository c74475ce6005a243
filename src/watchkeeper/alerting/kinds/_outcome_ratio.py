"""`outcome_ratio`: the share of spans whose outcome is one of the bad ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from watchkeeper.alerting._evaluate import bad_count
from watchkeeper.alerting._fetch import QueryContext, window_filter
from watchkeeper.alerting._model import parse_ratio
from watchkeeper.alerting._promql import (
    SPANS,
    Expression,
    duration,
    filter_matchers,
    group_labels,
    min_count_clause,
    number,
    selector,
)
from watchkeeper.alerting.kinds._span import SpanRule
from watchkeeper.store import SpanFilter, Summary

OUTCOMES = ("success", "error", "timeout", "fallback", "rejected")


class OutcomeRatioRule(SpanRule):
    """Fires when the share of spans with a bad outcome crosses the threshold."""

    label = "Outcome ratio"
    about = "The share of spans whose outcome is one of `outcomes` (error, timeout, ...)."
    example: ClassVar[dict[str, Any]] = {
        "outcomes": ["error", "timeout"],
        "threshold": "5%",
        "window": "5m",
        "group_by": "service",
    }

    kind: Literal["outcome_ratio"] = "outcome_ratio"
    outcomes: tuple[str, ...] = Field(  # the "bad" outcomes
        ("error",), json_schema_extra={"items": {"type": "string", "enum": list(OUTCOMES)}}
    )
    threshold: Annotated[float, BeforeValidator(parse_ratio)] = Field(
        0.0, json_schema_extra={"minimum": 0, "maximum": 1}, description="a share, 0 to 1"
    )

    def check(self) -> None:
        """Outcomes are the five an outcome can be."""
        bad = set(self.outcomes) - set(OUTCOMES)
        if bad:
            raise ValueError(f"unknown outcomes {sorted(bad)}: use error, timeout, fallback, ...")

    @property
    def is_ratio(self) -> bool:
        """The threshold is a share."""
        return True

    def value(self, s: Summary) -> float | None:
        """Bad spans over all spans."""
        return bad_count(s, self.outcomes) / s.count if self.judged(s) else None

    def examples(
        self, labels: Mapping[str, str], now: float, ctx: QueryContext
    ) -> SpanFilter | None:
        """The group's bad spans."""
        return dataclasses.replace(window_filter(self, labels, now), outcomes=self.outcomes)

    def unit(self) -> str:
        """A share, shown in percent."""
        return "%"

    def watches(self) -> str:
        """`share of error/timeout`."""
        return f"share of {'/'.join(self.outcomes)}"

    def promql(self) -> Expression | str:
        """Bad over all spans per second, per group."""
        base = filter_matchers(self.project, self.filters, SPANS)
        bad = filter_matchers(self.project, self.filters, SPANS, {"outcome": self.outcomes})
        by = group_labels(self, SPANS)
        if isinstance(base, str) or isinstance(bad, str) or isinstance(by, str):
            return next(x for x in (base, bad, by) if isinstance(x, str))
        g, w = ", ".join(by), duration(self.window)
        total = selector(SPANS, base)
        rate_total = f"sum by ({g}) (rate({total}[{w}]))"
        rate_bad = f"sum by ({g}) (rate({selector(SPANS, bad)}[{w}]))"
        # With no bad span in the window the numerator is empty: count it as 0, not as no data.
        expr = (
            f"(\n  ({rate_bad} or 0 * {rate_total})\n/\n  {rate_total}\n)"
            f" {self.comparison} {number(self.threshold)}" + min_count_clause(self, g, total)
        )
        return Expression(expr, "ratio", self.filters.scope == "requests")
