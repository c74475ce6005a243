"""`absence`: spans stop arriving from a group (or at all) that sent within the lookback."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from watchkeeper.alerting._evaluate import Observation, RuleData, group_labels, groups_of
from watchkeeper.alerting._fetch import QueryContext, Reader, span_filter, summaries
from watchkeeper.alerting._model import Duration, Rule
from watchkeeper.alerting._promql import (
    SPANS,
    Expression,
    duration,
    filter_matchers,
    selector,
)
from watchkeeper.alerting._promql import (
    group_labels as promql_group_labels,
)


class AbsenceRule(Rule):
    """Fires when a group has been silent for `window` (its value: seconds of silence)."""

    label = "Absence"
    about = "No spans for `window` from a group (or at all) that sent within `lookback`."
    example: ClassVar[dict[str, Any]] = {"group_by": "service", "window": "10m", "lookback": "1d"}

    kind: Literal["absence"] = "absence"
    lookback: Duration = 86400.0  # how far back a group counts as known

    def check(self) -> None:
        """The lookback reaches further back than the window."""
        if self.lookback <= self.window:
            raise ValueError("absence: lookback must be longer than window (e.g. 24h vs 10m)")

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """Summaries per group over the lookback (with the time of their last span)."""
        f = span_filter(self.project, self.filters, now - self.lookback, now)
        return RuleData(groups=summaries(store, self, f))

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """Seconds since each group's last span against the window."""
        out = []
        for key, s in groups_of(self, data).items():
            silent = self.lookback if not s.count or s.last_ns is None else now - s.last_ns / 1e9
            silent = max(0.0, silent)
            breaching = silent >= self.window
            labels = group_labels(self, key)
            out.append(Observation(key, labels, silent, self.window, breaching, s.count))
        return out

    def unit(self) -> str:
        """Seconds of silence."""
        return "s"

    def watches(self) -> str:
        """`spans arriving`."""
        return "spans arriving"

    def condition(self) -> str | None:
        """`no spans`."""
        return "no spans"

    def promql(self) -> Expression | str:
        """Silent in the window, but seen within the lookback (or never, ungrouped)."""
        base = filter_matchers(self.project, self.filters, SPANS)
        by = promql_group_labels(self, SPANS)
        if isinstance(base, str) or isinstance(by, str):
            return base if isinstance(base, str) else str(by)
        g, sel = ", ".join(by), selector(SPANS, base)
        # Silent now, but seen within the lookback: a group that never sent is not "down".
        expr = (
            f"sum by ({g}) (increase({sel}[{duration(self.window)}])) == 0\n"
            f"and on ({g})\n  sum by ({g}) (increase({sel}[{duration(self.lookback)}])) > 0"
        )
        if self.group_by is None:
            expr = f"(\n{expr}\n)\nor absent_over_time({sel}[{duration(self.window)}])"
        return Expression(expr, "")
