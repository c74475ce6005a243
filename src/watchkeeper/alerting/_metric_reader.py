"""What PromQL rules read: the query layer's PromQL engine over the metric store."""

from __future__ import annotations

from watchkeeper.alerting._fetch import MetricSample
from watchkeeper.query import Engine


class PromQLReader:
    """A `MetricReader` over one PromQL `Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def instant(self, project: str, expr: str, at_s: float) -> list[MetricSample]:
        """The series of `expr` at `at_s`."""
        return list(self._engine.instant(project, expr, round(at_s * 1000)))

    def has_metric(self, project: str, name: str) -> bool:
        """Whether the project holds a series of the metric."""
        return self._engine.has_metric(project, name)
