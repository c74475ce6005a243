"""`score`: an evaluation score of the window (its mean, or the share passing or failing)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from watchkeeper.alerting._evaluate import Observation, RuleData, threshold_observation
from watchkeeper.alerting._fetch import QueryContext, Reader, span_filter
from watchkeeper.alerting._model import Rule, required_in_schema
from watchkeeper.alerting._promql import Expression


class ScoreRule(Rule):
    """Fires when a score's mean (or pass rate, or low share) crosses the threshold."""

    label = "Score"
    about = (
        "An evaluation score in the window: its mean, the share passing (>= 0.5 or a label "
        "like positive) or the share failing."
    )
    groupable = False
    example: ClassVar[dict[str, Any]] = {
        "score_name": "user_feedback",
        "score_stat": "low_share",
        "threshold": "20%",
        "window": "1h",
    }

    model_config = ConfigDict(json_schema_extra=required_in_schema("score_name"))

    kind: Literal["score"] = "score"
    score_name: str = Field("", json_schema_extra={"minLength": 1})
    # the mean value, or the share of passing (>= 0.5, or a label like "positive") or failing
    # scores (feedback given as labels has no mean)
    score_stat: Literal["avg", "pass_rate", "low_share"] = "avg"

    def check(self) -> None:
        """A score rule names its score."""
        if not self.score_name:
            raise ValueError("a score rule needs score_name (e.g. hallucination, user_feedback)")

    @property
    def is_ratio(self) -> bool:
        """The pass rate and the low share are shares; the mean is not."""
        return self.score_stat != "avg"

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """The score's aggregates over the window."""
        f = span_filter(self.project, self.filters, now - self.window, now)
        return RuleData(scores=store.scores_summary(f, self.score_name))

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """The statistic against the threshold, once `min_count` scores exist."""
        found = next((s for s in data.scores if s.name == self.score_name), None)
        count = 0 if found is None else found.count
        value = None
        if found is not None and count >= max(self.min_count, 1):
            value = getattr(found, self.score_stat)
        return [threshold_observation(self, None, value, count)]

    def unit(self) -> str:
        """Percent for shares, none for the mean."""
        return "%" if self.score_stat != "avg" else ""

    def watches(self) -> str:
        """`score hallucination`."""
        return f"score {self.score_name}"

    def promql(self) -> Expression | str:
        """Not expressible."""
        return "evaluation scores are not exposed as Prometheus metrics"
