"""`burn_rate`: how fast an SLO spends its error budget, over a long and a short window.

The SLO's own rules (`alerting._slo.burn_rules`) are of this kind; one may be written by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from watchkeeper.alerting._evaluate import Observation, RuleData, burn_rate
from watchkeeper.alerting._fetch import QueryContext, Reader, slo_trace_filter, slo_window
from watchkeeper.alerting._model import Duration, Rule, Slo, required_in_schema
from watchkeeper.alerting._promql import Expression
from watchkeeper.store import SpanFilter


class BurnRateRule(Rule):
    """Fires when both windows burn the SLO's budget more than `factor` times too fast."""

    label = "SLO burn rate"
    about = (
        "How many times faster than allowed an SLO spends its error budget, over `window` "
        "and `short_window` both (the multi-window, multi-burn-rate alert)."
    )
    example: ClassVar[dict[str, Any]] = {
        "slo": "checkout-availability",
        "window": "1h",
        "short_window": "5m",
        "factor": 14.4,
    }

    model_config = ConfigDict(json_schema_extra=required_in_schema("slo", "short_window"))

    kind: Literal["burn_rate"] = "burn_rate"
    # the SLO whose error budget burns (window = the long window)
    slo: str = Field("", json_schema_extra={"minLength": 1})
    # the short window that must burn too (and shorter than `window`: a 400 says so)
    short_window: Duration = Field(0.0, json_schema_extra={"exclusiveMinimum": 0})
    factor: float = Field(default=1.5, gt=0)

    def check(self) -> None:
        """An SLO, and a short window inside the long one."""
        if not (self.slo and 0 < self.short_window < self.window):
            raise ValueError("burn_rate needs slo and a short_window shorter than window")

    def slo_in(self, slos: Mapping[str, Slo]) -> Slo | None:
        """The SLO it burns: one of the rule's own project, never another's (SLO ids are
        unique in the configuration, not per project)."""
        slo = slos.get(self.slo)
        return slo if slo is not None and slo.project == self.project else None

    def references(self, slos: Mapping[str, Slo]) -> str | None:
        """A missing SLO (or one of another project)."""
        if self.slo_in(slos) is None:
            return f"no SLO {self.slo!r} in project {self.project!r}; see GET /api/v1/slos"
        return None

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """Total and bad requests of the SLI over both windows (nothing without its SLO)."""
        slo = self.slo_in(ctx.slos)
        if slo is None:
            return RuleData()
        long = slo_window(store, slo, now - self.window, now)
        short = slo_window(store, slo, now - self.short_window, now)
        return RuleData(burn=(long, short), objective=slo.objective)

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """The long window's burn rate; breaching when both exceed the factor."""
        if data.burn is None or data.objective is None:
            return [Observation(None, {}, None, self.factor, False)]
        long, short = data.burn
        fast, slow = burn_rate(long, data.objective), burn_rate(short, data.objective)
        enough = short.total >= max(self.min_count, 1)
        over = fast is not None and slow is not None and min(fast, slow) > self.factor
        return [Observation(None, {}, fast, self.factor, enough and over, long.total)]

    def examples(
        self, labels: Mapping[str, str], now: float, ctx: QueryContext
    ) -> SpanFilter | None:
        """Requests that spent the budget in the short window."""
        slo = self.slo_in(ctx.slos)
        return None if slo is None else slo_trace_filter(slo, now - self.short_window, now)

    def unit(self) -> str:
        """Times the allowed rate."""
        return "x"

    def watches(self) -> str:
        """`burn rate of SLO checkout-latency`."""
        return f"burn rate of SLO {self.slo}"

    def promql(self) -> Expression | str:
        """Exported with its SLO instead (`exports.render_slo_rules`)."""
        return "exported with its SLO as multi-window burn-rate alerts"
