"""`promql`: a Prometheus alerting rule over the metric store.

Its `expr` is evaluated at each evaluation's time; each series of the result is an alert of
its own (labelled with the series' labels, `__name__` dropped, and the rule's `labels` on
top), pending until it has been in the result for `for`, resolved once it is gone (after
`keep_firing_for`). Labels and annotations are Prometheus templates (`{{ $labels.instance }}`,
`{{ $value | humanize }}`). As in Prometheus, a result with more series than the rule's
`max_groups` (Prometheus's `limit`) is an evaluation error, not a cut list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from watchkeeper.alerting._evaluate import Observation, RuleData
from watchkeeper.alerting._fetch import QueryContext, Reader
from watchkeeper.alerting._model import Rule
from watchkeeper.alerting._promql import Expression
from watchkeeper.alerting._templates import expand
from watchkeeper.errors import ValidationError
from watchkeeper.query import parse_promql


class PromQLRule(Rule):
    """Fires for each series an expression over the metrics returns."""

    label = "PromQL"
    about = (
        "A PromQL expression over the project's metrics, as a Prometheus alerting rule: "
        "each series of its result is an alert once it has been there for `for`."
    )
    example: ClassVar[dict[str, Any]] = {"expr": "up == 0"}
    groupable = False

    kind: Literal["promql"] = "promql"
    expr: str = Field(default="", max_length=10_000)
    # The rule applies to a project only while it holds a series of each of these metrics
    # (the starter rules for exporters: no node exporter, no disk alert).
    requires: tuple[str, ...] = ()
    max_groups: int = Field(default=200, ge=1, le=200)

    def check(self) -> None:
        """The expression parses (the error says where it does not)."""
        if not self.expr.strip():
            raise ValueError("a promql rule needs expr, e.g. up == 0")
        try:
            parse_promql(self.expr)
        except ValidationError as exc:
            raise ValueError(f"expr: {exc}") from None

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """The expression's series at `now`."""
        if ctx.metrics is None:
            raise RuntimeError("this server has no metric store to evaluate PromQL rules on")
        return RuleData(series=tuple(ctx.metrics.instant(self.project, self.expr, now)))

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """One breaching observation per series (the rule's labels over the series')."""
        if len(data.series) > self.max_groups:
            raise ValidationError(
                f"rule {self.id}: {len(data.series)} series exceed its max_groups "
                f"({self.max_groups}); narrow the expression or aggregate it"
            )
        out: dict[str, Observation] = {}
        for labels, value in data.series:
            own = {k: expand(v, labels, value) for k, v in self.labels.items()}
            merged = {**labels, **own}
            key = json.dumps(merged, sort_keys=True)
            if key in out:
                raise ValidationError(
                    f"rule {self.id}: two series have the same labels once the rule's labels "
                    "are applied; keep a label that tells them apart"
                )
            out[key] = Observation(key, merged, value, None, True, 1)
        return list(out.values())

    def render_annotations(
        self, labels: Mapping[str, str], value: float | None
    ) -> dict[str, str] | None:
        """Each annotation expanded for one alert."""
        return {k: expand(v, labels, value) for k, v in self.annotations.items()}

    def needs_metrics(self) -> tuple[str, ...]:
        """The metrics of `requires`."""
        return self.requires

    def watches(self) -> str:
        """`PromQL`."""
        return "PromQL"

    def condition(self) -> str | None:
        """The expression."""
        return self.expr

    def promql(self) -> Expression | str:
        """Itself."""
        return Expression(self.expr, "", native=True)
