"""Metric samples as ingest hands them to the store: Prometheus's data model."""

from __future__ import annotations

from dataclasses import dataclass

#: A series' labels, `__name__` included, sorted by name: hashable and canonical.
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series at one time (milliseconds, as Prometheus keeps them)."""

    labels: Labels
    t_ms: int
    value: float | None  # None: a staleness marker (the series ended here)
    delta: bool = False  # added to the series' running total (OTLP delta temporality)

    @property
    def name(self) -> str:
        """The metric name (`__name__`)."""
        return next((v for k, v in self.labels if k == "__name__"), "")


@dataclass(frozen=True, slots=True)
class Metadata:
    """What a metric is: Prometheus type (counter, gauge, histogram, summary), unit, help."""

    type: str
    unit: str = ""
    help: str = ""
