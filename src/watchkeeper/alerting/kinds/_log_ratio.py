"""`log_ratio`: the share of the window's log records (of the same services) that match the
rule's `logs` (error logs / all logs), not judged below `min_count` records."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from watchkeeper.alerting._evaluate import Observation, RuleData, threshold_observation
from watchkeeper.alerting.kinds._log_rule import LogRule


class LogRatioRule(LogRule):
    """Fires when matching records are too large a share of the services' records."""

    label = "Log ratio"
    about = (
        "The share of the window's log records (of the same services) that match `logs`: "
        "error logs / all logs. Not judged below min_count records."
    )
    example: ClassVar[dict[str, Any]] = {
        "logs": {"severity": "error"},
        "threshold": "5%",
        "window": "10m",
    }

    kind: Literal["log_ratio"] = "log_ratio"

    @property
    def is_ratio(self) -> bool:
        """A share of records, 0 to 1."""
        return True

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """The share against the threshold; none when too few records to judge."""
        matching, every = data.log_counts
        value = matching / every if every and every >= self.min_count else None
        return [threshold_observation(self, None, value, every)]

    def unit(self) -> str:
        """%."""
        return "%"

    def watches(self) -> str:
        """`share of log records …`."""
        return f"share of log records ({self.logs.describe()})"
