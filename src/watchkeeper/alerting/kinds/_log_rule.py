"""`LogRule`: the shape of the log kinds (`log_count`, `log_ratio`), records matching a
query over the window.

A rule's `logs` says which records match (services, a severity at least, words and
"phrases" of the body, attribute equality), as `GET /api/v1/logs` reads them. `log_count`
judges how many matched; `log_ratio` the share they are of every record of the same services
in the window (error logs / all logs), not judged below `min_count` records. Both are one
verdict per rule (no `group_by`). Prometheus holds no logs, so neither has a Prometheus form
(a Loki ruler would say it with `count_over_time`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from watchkeeper.alerting._evaluate import RuleData
from watchkeeper.alerting._fetch import NS, QueryContext, Reader
from watchkeeper.alerting._model import Filters, Rule, _Model
from watchkeeper.alerting._promql import Expression
from watchkeeper.errors import ValidationError
from watchkeeper.model import SEVERITIES
from watchkeeper.store.logs import LogFilter, Terms


class LogQuery(_Model):
    """Which log records a rule counts; every condition given must hold."""

    services: tuple[str, ...] = ()
    # at least this severity: trace, debug, info, warn, error, fatal ("": any)
    severity: Literal["", "trace", "debug", "info", "warn", "error", "fatal"] = ""
    text: str = Field(default="", max_length=1000)  # words and "phrases" of the body
    attributes: dict[str, str] = Field(default_factory=dict)  # attribute equality

    @field_validator("text")
    @classmethod
    def _words(cls, v: str) -> str:
        if v.strip():
            try:
                Terms.parse(v)
            except ValidationError as exc:  # pydantic reports ValueErrors only
                raise ValueError(str(exc)) from None
        return v.strip()

    def log_filter(self, project: str, start_s: float, end_s: float) -> LogFilter:
        """The store's filter over one window."""
        return LogFilter(
            project,
            int(start_s * NS),
            int(end_s * NS),
            services=self.services,
            min_severity=SEVERITIES.index(self.severity) * 4 + 1 if self.severity else 0,
            text=Terms.parse(self.text) if self.text else None,
            attributes=tuple(sorted(self.attributes.items())),
        )

    def describe(self) -> str:
        """The query in a few words, for the UI and notifications."""
        parts = [f"{self.severity} or worse"] if self.severity else []
        parts += [f"service {', '.join(self.services)}"] if self.services else []
        parts += [f"containing {self.text}"] if self.text else []
        parts += [f"{k}={v}" for k, v in sorted(self.attributes.items())]
        return ", ".join(parts) or "any"


class LogRule(Rule):
    """A rule over log records: one verdict on the window's counts."""

    groupable = False

    logs: LogQuery = LogQuery()

    def check(self) -> None:
        """Log rules take their conditions from `logs`, never from the spans' filters."""
        if self.filters != Filters():
            raise ValueError(
                f"{self.kind} rules read logs: put their conditions under logs "
                "(services, severity, text, attributes), not filters"
            )

    def query(self, store: Reader, now: float, ctx: QueryContext) -> RuleData:
        """The number of matching records in the window (and of all, for a share)."""
        if ctx.logs is None:
            raise RuntimeError("this server has no log store to evaluate log rules on")
        matching = ctx.logs.count_matching(
            self.logs.log_filter(self.project, now - self.window, now)
        )
        every = 0
        if self.is_ratio:
            scope = LogQuery(services=self.logs.services)
            every = ctx.logs.count_matching(scope.log_filter(self.project, now - self.window, now))
        return RuleData(log_counts=(matching, every))

    def promql(self) -> Expression | str:
        """Why there is none: Prometheus holds no logs."""
        return (
            f"{self.kind} rules have no Prometheus form: Prometheus holds no logs (a Loki ruler "
            "would count them with count_over_time)"
        )
