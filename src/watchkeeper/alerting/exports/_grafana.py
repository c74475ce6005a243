"""Grafana provisioning: a Prometheus datasource, a dashboard provider, three dashboards.

Dashboards are built from a few panel helpers over the metrics the server and the SDK expose;
every query is scoped by the `$project` and `$service` variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting._promql import (
    BAD_OUTCOMES,
    SPANS,
)

DATASOURCE_UID = "watchkeeper-prometheus"
SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
SCOPE = 'project=~"$project",service=~"$service"'
BAD = "|".join(BAD_OUTCOMES)


@dataclass(frozen=True, slots=True)
class Dashboard:
    """One dashboard: its file name and JSON model."""

    filename: str
    model: dict[str, Any]


def datasource_yaml(prometheus_url: str) -> dict[str, Any]:
    """`provisioning/datasources/watchkeeper.yaml`."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus (Watchkeeper)",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
            }
        ],
    }


def provider_yaml(dashboards_path: str) -> dict[str, Any]:
    """`provisioning/dashboards/watchkeeper.yaml`: load the JSON files from a directory."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "watchkeeper",
                "orgId": 1,
                "folder": "Watchkeeper",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": True,
                "updateIntervalSeconds": 60,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(
    kind: str,
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    grid: tuple[int, int, int, int],
    description: str = "",
    stack: bool = False,
) -> dict[str, Any]:
    """A `timeseries` or `stat` panel; `grid` is (x, y, w, h)."""
    x, y, w, h = grid
    custom: dict[str, Any] = {}
    if kind == "timeseries":
        custom = {"fillOpacity": 20 if stack else 0, "lineWidth": 1}
        if stack:
            custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [_target(e, legend, chr(65 + i)) for i, (e, legend) in enumerate(queries)],
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    }


def _variables() -> list[dict[str, Any]]:
    def query_var(name: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": name.capitalize(),
            "type": "query",
            "datasource": DS,
            "query": {"query": query, "refId": name},
            "definition": query,
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "sort": 1,
        }

    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"text": "Prometheus (Watchkeeper)", "value": DATASOURCE_UID},
        },
        query_var("project", f"label_values({SPANS}, project)"),
        query_var("service", f'label_values({SPANS}{{project=~"$project"}}, service)'),
    ]


def dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], tags: list[str]
) -> dict[str, Any]:
    """A dashboard JSON model with ids assigned to its panels."""
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid,
        "title": title,
        "tags": ["watchkeeper", *tags],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": _variables()},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
