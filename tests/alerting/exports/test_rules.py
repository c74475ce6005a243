"""Rules and SLOs rendered as PromQL: what is translated, and what is refused and why."""

from __future__ import annotations

from tests.alerting.exports._inputs import (
    ALL_RULES,
    AVAILABILITY,
    ERROR_SPIKE,
    EXPENSIVE,
    LATENCY,
    SLOW,
    Filters,
    Slo,
    new_rule,
)
from watchkeeper.alerting._promql import SPAN_DURATION_BUCKETS, duration, le_label
from watchkeeper.alerting.exports import (
    Skipped,
    render_alert_rules,
    render_slo_rules,
    rule_expression,
)
from watchkeeper.server._span_metrics import DURATION_BUCKETS


def test_bucket_bounds_match_the_servers_histogram() -> None:
    assert SPAN_DURATION_BUCKETS == DURATION_BUCKETS
    assert le_label(8.0) == "8.0" and le_label(0.005) == "0.005" and le_label(30) == "30.0"


def test_durations() -> None:
    assert [duration(s) for s in (0, 0.25, 30, 300, 5400, 86400 * 30)] == [
        "0s", "250ms", "30s", "5m", "1h30m", "30d",
    ]  # fmt: skip


def test_every_supported_kind_is_rendered() -> None:
    export = render_alert_rules(ALL_RULES)
    assert export.skipped == ()
    names = [r["alert"] for r in export.document["groups"][0]["rules"]]
    assert names == [
        "Error spike", "Spend above 1 USD per minute", "Slow", "Tokens", "Quiet", "Timeouts",
        "AvgLatency", "Spend above the usual",
    ]  # fmt: skip


def test_error_ratio_expression() -> None:
    expr = rule_expression(ERROR_SPIKE)
    assert not isinstance(expr, Skipped)
    assert expr.unit == "ratio"
    assert 'watchkeeper_spans_total{project="default",outcome="error"}[5m]' in expr.expr
    assert "sum by (project, service)" in expr.expr
    assert ") > 0.05\nand on (project, service)" in expr.expr
    assert ">= 20" in expr.expr


def test_filters_become_matchers_and_llm_scope_is_exact_for_cost() -> None:
    slow = rule_expression(SLOW)
    assert not isinstance(slow, Skipped)
    assert 'service=~"chat|search"' in slow.expr
    assert "histogram_quantile(0.95, sum by (project, le)" in slow.expr
    assert ") * 1000 > 6500" in slow.expr
    cost = rule_expression(EXPENSIVE)
    assert not isinstance(cost, Skipped)
    assert cost.expr == (
        'sum by (project, model) (increase(watchkeeper_cost_usd_total{project="default"}[1m])) > 1'
    )
    assert not cost.approximate


def test_what_cannot_be_expressed_is_refused_with_a_reason() -> None:
    cases = [
        (new_rule(id="a", kind="score", score_name="quality"), "scores are not exposed"),
        (new_rule(id="b", kind="anomaly", filters=Filters(agents=("x",))), "agents"),
        (new_rule(id="c", kind="outcome_ratio", filters=Filters(routes=("/chat",))), "routes"),
        (new_rule(id="d", kind="outcome_ratio", group_by="model"), "group_by model"),
        (new_rule(id="e", kind="latency", statistic="max"), "histogram"),
        (new_rule(id="f", kind="sum", filters=Filters(outcomes=("error",))), "no label outcome"),
    ]
    for rule, reason in cases:
        result = rule_expression(rule)
        assert isinstance(result, Skipped), rule.id
        assert reason in result.reason, (rule.id, result.reason)


def test_disabled_rules_are_left_out_and_overrides_apply() -> None:
    off = new_rule(id="off", kind="count", enabled=False)
    export = render_alert_rules([off, ERROR_SPIKE], interval_s=1, for_s=0)
    (group,) = export.document["groups"]
    assert group["interval"] == "1s"
    (rule,) = group["rules"]
    assert rule["for"] == "0s"
    assert rule["labels"] == {"severity": "warning", "rule": "error-spike"}
    assert rule["annotations"]["summary"] == (
        "{{ $labels.service }}: {{ $value | humanizePercentage }} of requests failed over 5m"
    )


def test_sloth_names_labels_and_windows() -> None:
    export = render_slo_rules([AVAILABILITY, LATENCY])
    assert export.skipped == ()
    names = [g["name"] for g in export.groups]
    assert names[:3] == [
        "sloth-slo-sli-recordings-chat-chat-availability",
        "sloth-slo-meta-recordings-chat-chat-availability",
        "sloth-slo-alerts-chat-chat-availability",
    ]
    sli = export.groups[0]["rules"]
    assert [r["record"] for r in sli] == [
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    ]
    assert sli[0]["labels"] == {
        "sloth_id": "chat-chat-availability",
        "sloth_service": "chat",
        "sloth_slo": "chat-availability",
        "sloth_window": "5m",
    }
    meta = {r["record"]: r for r in export.groups[1]["rules"]}
    assert meta["slo:objective:ratio"]["expr"] == "vector(0.99)"
    assert meta["slo:error_budget:ratio"]["expr"] == "vector(0.01)"
    assert meta["slo:time_period:days"]["expr"] == "vector(30)"
    assert set(meta) >= {
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
    }
    page, ticket = export.groups[2]["rules"]
    assert page["labels"]["severity"] == "critical" and page["labels"]["sloth_severity"] == "page"
    assert "(14.4 * 0.01)" in page["expr"] and "(6 * 0.01)" in page["expr"]
    assert "ratio_rate3d" in ticket["expr"] and "(1 * 0.01)" in ticket["expr"]
    latency_sli = export.groups[3]["rules"]
    assert 'le="8.0"' in latency_sli[0]["expr"]
    assert latency_sli[-1]["record"] == "slo:sli_error:ratio_rate28d"


def test_latency_slo_off_the_buckets_is_refused() -> None:
    export = render_slo_rules([Slo(id="x", sli="latency", latency_threshold_ms=7000)])
    (skipped,) = export.skipped
    assert "bucket bound" in skipped.reason and "8000" in skipped.reason
