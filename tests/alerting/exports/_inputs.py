"""Rules and SLOs the export tests render: the engine's own models, as the config builds them."""

from __future__ import annotations

from typing import Any

from watchkeeper.alerting._config import Filters, Rule, Slo, parse_rule

__all__ = ["Filters", "Slo", "new_rule"]


def new_rule(**fields: Any) -> Rule:
    """A rule of its kind, validated as the config file's would be."""
    return parse_rule(fields)


ERROR_SPIKE = new_rule(
    id="error-spike",
    kind="outcome_ratio",
    name="Error spike",
    threshold=0.05,
    for_=120.0,
    group_by="service",
    min_count=20,
    annotations={"summary": "{service}: {value} of requests failed over {window}"},
)
EXPENSIVE = new_rule(
    id="spend-per-hour",
    kind="sum",
    name="Spend above 1 USD per minute",
    field="cost_usd",
    window=60.0,
    threshold=1.0,
    severity="critical",
    group_by="model",
    filters=Filters(scope="llm"),
)
SLOW = new_rule(
    id="p95-slow",
    kind="latency",
    name="Slow",
    threshold=6500,
    filters=Filters(services=("chat", "search")),
)
TOKENS = new_rule(
    id="tokens", name="Tokens", kind="sum", field="total_tokens", threshold=1e6, window=3600.0
)
QUIET = new_rule(id="quiet", name="Quiet", kind="absence", group_by="service", window=600.0)
COUNT = new_rule(
    id="timeouts",
    name="Timeouts",
    kind="count",
    filters=Filters(outcomes=("timeout",)),
    threshold=10,
)
AVG = new_rule(id="avg-latency", name="AvgLatency", kind="latency", statistic="avg", threshold=1000)
SPEND_ANOMALY = new_rule(
    id="spend-anomaly",
    kind="anomaly",
    name="Spend above the usual",
    metric="cost_usd",
    window=3600.0,
    factor=1.5,
    min_value=1.0,
    filters=Filters(scope="llm"),
)
ALL_RULES = (ERROR_SPIKE, EXPENSIVE, SLOW, TOKENS, QUIET, COUNT, AVG, SPEND_ANOMALY)

AVAILABILITY = Slo(
    id="chat-availability",
    name="Chat availability",
    filters=Filters(services=("chat",)),
    objective=0.99,
)
LATENCY = Slo(
    id="chat-latency",
    filters=Filters(services=("chat",)),
    sli="latency",
    latency_threshold_ms=8000,
    objective=0.95,
    period=28 * 86400.0,
)
