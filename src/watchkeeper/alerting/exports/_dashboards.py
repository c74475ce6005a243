"""The three dashboards: system health, AI quality, cost."""

from __future__ import annotations

from watchkeeper.alerting._promql import (
    COST,
    DURATION,
    GENAI_DURATION,
    GENAI_TOKENS,
    GUARD_CALLS,
    GUARD_DURATION,
    HTTP_DURATION,
    SPANS,
    TOKENS,
)
from watchkeeper.alerting.exports._grafana import BAD, SCOPE, Dashboard, dashboard, panel

R = "$__rate_interval"


def _quantile(q: float, metric: str, by: str, selector: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{R}])))"


def system_health() -> Dashboard:
    """Traffic, errors, latency and SLO budgets per service."""
    spans = f"{SPANS}{{{SCOPE}}}"
    bad = f'{SPANS}{{{SCOPE},outcome=~"{BAD}"}}'
    panels = [
        panel("stat", "Spans per second", [(f"sum(rate({spans}[{R}]))", "spans/s")],
              "reqps", (0, 0, 6, 4)),
        panel("stat", "Error ratio", [(f"sum(rate({bad}[{R}])) / sum(rate({spans}[{R}]))",
              "errors")], "percentunit", (6, 0, 6, 4),
              "Spans whose outcome is error, timeout or rejected."),
        panel("stat", "p95 latency", [(_quantile(0.95, DURATION, "project", SCOPE), "p95")],
              "s", (12, 0, 6, 4)),
        panel("stat", "Error budget left (worst SLO)",
              [("min(slo:period_error_budget_remaining:ratio)", "budget")], "percentunit",
              (18, 0, 6, 4), "From the exported Sloth-compatible SLO rules."),
        panel("timeseries", "Spans by outcome",
              [(f"sum by (outcome) (rate({spans}[{R}]))", "{{outcome}}")], "reqps",
              (0, 4, 12, 8), stack=True),
        panel("timeseries", "Error ratio by service",
              [(f"sum by (service) (rate({bad}[{R}])) / sum by (service) (rate({spans}[{R}]))",
                "{{service}}")], "percentunit", (12, 4, 12, 8)),
        panel("timeseries", "Latency percentiles",
              [(_quantile(q, DURATION, "project", SCOPE), f"p{round(q * 100)}")
               for q in (0.5, 0.95, 0.99)], "s", (0, 12, 12, 8)),
        panel("timeseries", "p95 latency by operation",
              [(_quantile(0.95, DURATION, "operation", SCOPE), "{{operation}}")], "s",
              (12, 12, 12, 8)),
        panel("timeseries", "SLO burn rate (5m)",
              [("slo:current_burn_rate:ratio", "{{sloth_service}}/{{sloth_slo}}")], "none",
              (0, 20, 12, 8), "1 spends the budget exactly over the period; 14.4 pages."),
        panel("timeseries", "HTTP p95 by route (SDK)",
              [(_quantile(0.95, HTTP_DURATION, "http_route", 'service=~"$service"'),
                "{{http_route}}")], "s", (12, 20, 12, 8),
              "From the application's own /metrics (http_server_request_duration_seconds)."),
    ]  # fmt: skip
    return Dashboard(
        "watchkeeper-system-health.json",
        dashboard("wk-system-health", "Watchkeeper · System health", panels, ["health"]),
    )


def ai_quality() -> Dashboard:
    """Model calls: outcomes, guards, fallbacks and latency per model."""
    llm = f'{SPANS}{{{SCOPE},operation="llm"}}'
    panels = [
        panel("timeseries", "Model calls by outcome",
              [(f"sum by (outcome) (rate({llm}[{R}]))", "{{outcome}}")], "reqps",
              (0, 0, 12, 8), stack=True),
        panel("timeseries", "Fallback and timeout ratio of model calls",
              [(f'sum(rate({SPANS}{{{SCOPE},operation="llm",outcome="{o}"}}[{R}])) '
                f"/ sum(rate({llm}[{R}]))", o) for o in ("fallback", "timeout")],
              "percentunit", (12, 0, 12, 8)),
        panel("timeseries", "Guard outcomes (SDK)",
              [(f"sum by (name, outcome) (rate({GUARD_CALLS}[{R}]))", "{{name}} {{outcome}}")],
              "reqps", (0, 8, 12, 8), stack=True),
        panel("timeseries", "Guard p95 duration (SDK)",
              [(_quantile(0.95, GUARD_DURATION, "name", ""), "{{name}}")], "s",
              (12, 8, 12, 8)),
        panel("timeseries", "GenAI call p95 by model (SDK)",
              [(_quantile(0.95, GENAI_DURATION, "gen_ai_request_model", ""),
                "{{gen_ai_request_model}}")], "s", (0, 16, 12, 8)),
        panel("timeseries", "GenAI errors by type (SDK)",
              [(f'sum by (error_type) (rate({GENAI_DURATION}_count{{error_type!=""}}[{R}]))',
                "{{error_type}}")], "reqps", (12, 16, 12, 8)),
    ]  # fmt: skip
    return Dashboard(
        "watchkeeper-ai-quality.json",
        dashboard("wk-ai-quality", "Watchkeeper · AI quality", panels, ["ai", "quality"]),
    )


def cost() -> Dashboard:
    """Spend and tokens per service and model."""
    spend = f"{COST}{{{SCOPE}}}"
    tokens = f"{TOKENS}{{{SCOPE}}}"
    panels = [
        panel("stat", "Spend in range", [(f"sum(increase({spend}[$__range]))", "USD")],
              "currencyUSD", (0, 0, 8, 4)),
        panel("stat", "Spend per hour (now)", [(f"sum(rate({spend}[{R}])) * 3600", "USD/h")],
              "currencyUSD", (8, 0, 8, 4)),
        panel("stat", "Tokens in range", [(f"sum(increase({tokens}[$__range]))", "tokens")],
              "short", (16, 0, 8, 4)),
        panel("timeseries", "Spend per hour by model",
              [(f"sum by (model) (rate({spend}[{R}])) * 3600", "{{model}}")], "currencyUSD",
              (0, 4, 12, 8), stack=True),
        panel("timeseries", "Spend per hour by service",
              [(f"sum by (service) (rate({spend}[{R}])) * 3600", "{{service}}")],
              "currencyUSD", (12, 4, 12, 8), stack=True),
        panel("timeseries", "Tokens per second by type",
              [(f"sum by (type) (rate({tokens}[{R}]))", "{{type}}")], "short",
              (0, 12, 12, 8), stack=True),
        panel("timeseries", "Tokens per call by model (SDK, p95)",
              [(_quantile(0.95, GENAI_TOKENS, "gen_ai_request_model, gen_ai_token_type", ""),
                "{{gen_ai_request_model}} {{gen_ai_token_type}}")], "short", (12, 12, 12, 8)),
    ]  # fmt: skip
    return Dashboard(
        "watchkeeper-cost.json", dashboard("wk-cost", "Watchkeeper · Cost", panels, ["cost"])
    )


def all_dashboards() -> list[Dashboard]:
    """Every dashboard we ship."""
    return [system_health(), ai_quality(), cost()]
