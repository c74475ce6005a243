"""`SpanRule`: the shape most kinds share, a value per group of span summaries over a window."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

from watchkeeper.alerting._evaluate import (
    Observation,
    RuleData,
    groups_of,
    threshold_observation,
)
from watchkeeper.alerting._fetch import QueryContext, Reader, span_filter, summaries, window_filter
from watchkeeper.alerting._model import Rule
from watchkeeper.store import SpanFilter, Summary


class SpanRule(Rule):
    """A rule judged on span summaries over its window, per group, against its threshold."""

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """The window's summary per group."""
        f = span_filter(self.project, self.filters, now - self.window, now)
        return RuleData(groups=summaries(store, self, f))

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """Each group's value against the threshold."""
        groups = groups_of(self, data).items()
        return [threshold_observation(self, k, self.value(s), s.count) for k, s in groups]

    def examples(
        self, labels: Mapping[str, str], now: float, ctx: QueryContext
    ) -> SpanFilter | None:
        """The group's spans in the window."""
        return window_filter(self, labels, now)

    def judged(self, s: Summary) -> bool:
        """Whether a summary holds enough spans (`min_count`, at least one) to judge."""
        return s.count >= max(self.min_count, 1)

    @abstractmethod
    def value(self, s: Summary) -> float | None:
        """The value observed on one summary; None when too few spans to judge."""
