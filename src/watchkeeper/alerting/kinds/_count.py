"""`count`: the number of spans in the window."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from watchkeeper.alerting._promql import (
    SPANS,
    Expression,
    duration,
    filter_matchers,
    group_labels,
    number,
    selector,
)
from watchkeeper.alerting.kinds._span import SpanRule
from watchkeeper.store import Summary


class CountRule(SpanRule):
    """Fires when the number of matching spans crosses the threshold."""

    label = "Count"
    about = "The number of spans matching the filters in the window (filters.outcomes too)."
    example: ClassVar[dict[str, Any]] = {
        "filters": {"outcomes": ["rejected"]},
        "threshold": 10,
        "window": "5m",
    }

    kind: Literal["count"] = "count"

    def value(self, s: Summary) -> float | None:
        """The number of spans."""
        return float(s.count)

    def watches(self) -> str:
        """`number of spans`."""
        return "number of spans"

    def promql(self) -> Expression | str:
        """The increase of the span counter."""
        base = filter_matchers(self.project, self.filters, SPANS)
        by = group_labels(self, SPANS)
        if isinstance(base, str) or isinstance(by, str):
            return base if isinstance(base, str) else str(by)
        g, w = ", ".join(by), duration(self.window)
        value = f"sum by ({g}) (increase({selector(SPANS, base)}[{w}]))"
        expr = f"{value} {self.comparison} {number(self.threshold)}"
        return Expression(expr, "spans", self.filters.scope == "requests")
