"""`sum`: the total of a span field over the window (cost, tokens)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from watchkeeper.alerting._evaluate import metric_value
from watchkeeper.alerting._promql import (
    COST,
    TOKEN_FIELDS,
    TOKENS,
    Expression,
    duration,
    filter_matchers,
    group_labels,
    number,
    selector,
)
from watchkeeper.alerting.kinds._span import SpanRule
from watchkeeper.store import Summary

SumField = Literal["cost_usd", "input_tokens", "output_tokens", "total_tokens"]


class SumRule(SpanRule):
    """Fires when the window's total of a field crosses the threshold."""

    label = "Sum"
    about = "The total of cost_usd, input_tokens, output_tokens or total_tokens in the window."
    example: ClassVar[dict[str, Any]] = {"field": "cost_usd", "threshold": 50, "window": "1h"}

    kind: Literal["sum"] = "sum"
    field: SumField = "cost_usd"

    def value(self, s: Summary) -> float | None:
        """The total (judged on any number of spans: no spans is a sum of 0)."""
        return metric_value(s, self.field)

    def unit(self) -> str:
        """USD for cost, none for tokens."""
        return "USD" if self.field == "cost_usd" else ""

    def watches(self) -> str:
        """`sum of cost_usd`."""
        return f"sum of {self.field}"

    def promql(self) -> Expression | str:
        """The increase of the cost or token counter."""
        if self.field == "cost_usd":
            metric, extra, unit = COST, {}, "USD"
        elif self.field in TOKEN_FIELDS:
            metric, extra, unit = TOKENS, {"type": TOKEN_FIELDS[self.field]}, "tokens"
        else:
            return f"field {self.field} has no metric"
        base = filter_matchers(self.project, self.filters, metric, extra)
        by = group_labels(self, metric)
        if isinstance(base, str) or isinstance(by, str):
            return base if isinstance(base, str) else str(by)
        g, w = ", ".join(by), duration(self.window)
        value = f"sum by ({g}) (increase({selector(metric, base)}[{w}]))"
        return Expression(f"{value} {self.comparison} {number(self.threshold)}", unit)
