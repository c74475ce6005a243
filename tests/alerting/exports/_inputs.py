"""Small rule and SLO values satisfying the exporters' input protocols."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Filters:
    scope: str = "spans"
    services: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    name: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    title: str = ""
    description: str = ""
    enabled: bool = True
    project: str = "default"
    filters: Filters = Filters()
    window: float = 300.0
    threshold: float = 0.0
    comparison: str = ">"
    for_: float = 0.0
    keep_firing_for: float = 0.0
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    group_by: str | None = None
    min_count: int = 0
    outcomes: tuple[str, ...] = ("error",)
    statistic: str = "p95"
    field: str = "cost_usd"
    lookback: float = 86400.0
    metric: str = "cost_usd"
    baseline_days: int = 7
    factor: float = 1.5
    min_value: float = 0.0


@dataclass(frozen=True)
class Slo:
    id: str
    title: str = ""
    description: str = ""
    project: str = "default"
    filters: Filters = Filters()
    sli: str = "availability"
    objective: float = 0.99
    latency_threshold_ms: float | None = None
    period: float = 30 * 86400.0
    alerting: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


ERROR_SPIKE = Rule(
    id="error-spike",
    kind="outcome_ratio",
    title="Error spike",
    threshold=0.05,
    for_=120.0,
    group_by="service",
    min_count=20,
    annotations={"summary": "{service}: {value} of requests failed over {window}"},
)
EXPENSIVE = Rule(
    id="spend-per-hour",
    kind="sum",
    title="Spend above 1 USD per minute",
    field="cost_usd",
    window=60.0,
    threshold=1.0,
    severity="critical",
    group_by="model",
    filters=Filters(scope="llm"),
)
SLOW = Rule(
    id="p95-slow",
    kind="latency",
    title="Slow",
    threshold=6500,
    filters=Filters(services=("chat", "search")),
)
TOKENS = Rule(id="tokens", kind="sum", field="total_tokens", threshold=1e6, window=3600.0)
QUIET = Rule(id="quiet", kind="absence", group_by="service", window=600.0)
COUNT = Rule(id="timeouts", kind="count", filters=Filters(outcomes=("timeout",)), threshold=10)
AVG = Rule(id="avg-latency", kind="latency", statistic="avg", threshold=1000)
SPEND_ANOMALY = Rule(
    id="spend-anomaly",
    kind="anomaly",
    title="Spend above the usual",
    metric="cost_usd",
    window=3600.0,
    factor=1.5,
    min_value=1.0,
    filters=Filters(scope="llm"),
)
ALL_RULES = (ERROR_SPIKE, EXPENSIVE, SLOW, TOKENS, QUIET, COUNT, AVG, SPEND_ANOMALY)

AVAILABILITY = Slo(
    id="chat-availability",
    title="Chat availability",
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
