"""Alerting: rules as data, a pure evaluator and state machine, SLOs, the outbox, digests.

`build_alerting(services)` gives the `AlertingEngine` the server starts in its lifespan;
`report_main(argv)` is `watchkeeper report`.
"""

from watchkeeper.alerting._config import (
    AlertingConfig,
    Filters,
    Matcher,
    Route,
    Rule,
    Slo,
    load_alerting_config,
    parse_duration,
    parse_rule,
    parse_silence,
    rule_to_data,
)
from watchkeeper.alerting._evaluate import Decision, Observation, RuleData, evaluate
from watchkeeper.alerting._notification import Channel, DeliveryError, Notification
from watchkeeper.alerting._notify import render_summary
from watchkeeper.alerting._policy import Silence
from watchkeeper.alerting._report import report_main
from watchkeeper.alerting._service import AlertingEngine, build_alerting
from watchkeeper.alerting._state import AlertState, Event, Timing, transition

__all__ = [
    "AlertState",
    "AlertingConfig",
    "AlertingEngine",
    "Channel",
    "Decision",
    "DeliveryError",
    "Event",
    "Filters",
    "Matcher",
    "Notification",
    "Observation",
    "Route",
    "Rule",
    "RuleData",
    "Silence",
    "Slo",
    "Timing",
    "build_alerting",
    "evaluate",
    "load_alerting_config",
    "parse_duration",
    "parse_rule",
    "parse_silence",
    "render_summary",
    "report_main",
    "rule_to_data",
    "transition",
]
