"""`log_count`: the number of log records matching the rule's `logs` in the window."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from watchkeeper.alerting._evaluate import Observation, RuleData, threshold_observation
from watchkeeper.alerting.kinds._log_rule import LogRule


class LogCountRule(LogRule):
    """Fires when the number of matching log records crosses the threshold."""

    label = "Log count"
    about = "The number of log records matching `logs` (severity, services, text) in the window."
    example: ClassVar[dict[str, Any]] = {
        "logs": {"severity": "error", "text": "timeout"},
        "threshold": 10,
        "window": "5m",
    }

    kind: Literal["log_count"] = "log_count"

    def observe(self, data: RuleData, now: float) -> list[Observation]:
        """The count against the threshold."""
        matching, _ = data.log_counts
        return [threshold_observation(self, None, float(matching), matching)]

    def watches(self) -> str:
        """`log records (error or worse, …)`."""
        return f"log records ({self.logs.describe()})"
