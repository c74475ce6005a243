"""The engine's own metrics, registered on the registry it is given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AlertMetrics:
    """Evaluations, their duration, deliveries per channel and result, outbox depth."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.evaluations = Counter(
            "watchkeeper_alert_evaluations",
            "Rule evaluations, by result (ok or error).",
            ["result"],
            registry=registry,
        )
        self.evaluation_seconds = Histogram(
            "watchkeeper_alert_evaluation_seconds",
            "Time to query the store for one rule and evaluate it.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        self.notifications = Counter(
            "watchkeeper_alert_notifications",
            "Delivery attempts of notifications, by channel and result (ok, retry, failed).",
            ["channel", "result"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "watchkeeper_alert_outbox_depth",
            "Notifications waiting in the outbox for delivery.",
            registry=registry,
        )
        self.outbox_dropped = Counter(
            "watchkeeper_alert_outbox_dropped",
            "Notifications dropped because the outbox was full or they expired.",
            registry=registry,
        )
        self.leader = Gauge(
            "watchkeeper_alert_evaluation_leader",
            "1 on the replica that holds the evaluation lease (evaluates and delivers), else 0.",
            registry=registry,
        )
        self.firing = Gauge(
            "watchkeeper_alerts_firing",
            "Alerts currently firing.",
            registry=registry,
        )
