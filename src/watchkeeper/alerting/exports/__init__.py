"""Exports for teams on Prometheus: alerting rules, Sloth-compatible SLO rules, an
Alertmanager configuration from our channels, and Grafana provisioning with dashboards.

    watchkeeper export prometheus-rules [--config FILE] [--out DIR]
    watchkeeper export alertmanager-config [--config FILE] [--out DIR] [--alertmanager-version V]
    watchkeeper export grafana [--out DIR] [--prometheus-url URL] [--dashboards-path PATH]

Rules are translated only where the exposed metrics can answer them; the others are named,
with the reason, in the file header and on stderr.
"""

from watchkeeper.alerting._promql import Skipped, quote
from watchkeeper.alerting.exports._alertmanager import (
    AlertmanagerExport,
    render_alertmanager_config,
)
from watchkeeper.alerting.exports._dashboards import all_dashboards
from watchkeeper.alerting.exports._grafana import datasource_yaml, provider_yaml
from watchkeeper.alerting.exports._inputs import RouteInput
from watchkeeper.alerting.exports._rules import RulesExport, render_alert_rules, rule_expression
from watchkeeper.alerting.exports._slo_rules import SloExport, render_slo_rules
from watchkeeper.alerting.exports._user_dashboards import grafana_dashboard
from watchkeeper.alerting.exports._yaml import dump as dump_yaml

__all__ = [
    "AlertmanagerExport",
    "RouteInput",
    "RulesExport",
    "Skipped",
    "SloExport",
    "all_dashboards",
    "datasource_yaml",
    "dump_yaml",
    "grafana_dashboard",
    "provider_yaml",
    "quote",
    "render_alert_rules",
    "render_alertmanager_config",
    "render_slo_rules",
    "rule_expression",
]
