"""Alerting: rules as data, a pure evaluator and state machine, SLOs, the outbox, digests.

`build_alerting(config, store, meta, registry, ...)` gives the `AlertingEngine` the server
starts in its lifespan; the digests' collection and rendering are here, the `watchkeeper
report` command in `cli`.
"""

from watchkeeper.alerting._config import (
    AlertingConfig,
    Filters,
    Matcher,
    Route,
    Rule,
    Slo,
    alerting_of,
    load_alerting_config,
    parse_duration,
    parse_rule,
    parse_silence,
    rule_to_data,
)
from watchkeeper.alerting._evaluate import Decision, Observation, RuleData, evaluate
from watchkeeper.alerting._fetch import Signals
from watchkeeper.alerting._metric_reader import PromQLReader
from watchkeeper.alerting._notification import Channel, DeliveryError, Notification
from watchkeeper.alerting._notify import render_summary
from watchkeeper.alerting._policy import Silence
from watchkeeper.alerting._report import RENDERERS, Digest, SloLine, collect_digest
from watchkeeper.alerting._rules_file import RulesFile, load_rules_file
from watchkeeper.alerting._service import AlertingEngine, build_alerting
from watchkeeper.alerting._slo import burn_rules, slo_status
from watchkeeper.alerting._state import AlertState, Event, Timing, transition

__all__ = [
    "RENDERERS",
    "AlertState",
    "AlertingConfig",
    "AlertingEngine",
    "Channel",
    "Decision",
    "DeliveryError",
    "Digest",
    "Event",
    "Filters",
    "Matcher",
    "Notification",
    "Observation",
    "PromQLReader",
    "Route",
    "Rule",
    "RuleData",
    "RulesFile",
    "Signals",
    "Silence",
    "Slo",
    "SloLine",
    "Timing",
    "alerting_of",
    "build_alerting",
    "burn_rules",
    "collect_digest",
    "evaluate",
    "load_alerting_config",
    "load_rules_file",
    "parse_duration",
    "parse_rule",
    "parse_silence",
    "render_summary",
    "rule_to_data",
    "slo_status",
    "transition",
]
