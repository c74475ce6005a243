"""Our dashboards (`watchkeeper.dashboards`: the shipped ones and the user's YAML files) as
Grafana dashboard JSON models, for a Grafana whose Prometheus data source is Watchkeeper's
`/prometheus` API (or a Prometheus scraping the same targets).

Sections become Grafana rows; each panel keeps its grid, unit, legends and description.
Span queries have no PromQL equivalent: a panel keeps its PromQL queries, and a panel with
none is exported as a text panel saying where to see it.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.alerting.exports._grafana import DS, Dashboard, dashboard, panel
from watchkeeper.dashboards import Dashboard as Board
from watchkeeper.dashboards import Panel

#: Each variable's values, as Grafana's `label_values` query over the series that have them.
_VARIABLE_SOURCES = {
    "job": "label_values(up, job)",
    "instance": 'label_values(up{job=~"$job"}, instance)',
    "service": "label_values(job)",  # an OTLP resource's service.name is its series' job
    "environment": "label_values(deployment_environment_name)",
}


def _variable(name: str) -> dict[str, Any]:
    query = _VARIABLE_SOURCES[name]
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


def _panel(p: Panel, y0: int, base_url: str, board_id: str) -> dict[str, Any]:
    grid = (p.grid.x, y0 + p.grid.y, p.grid.w, p.grid.h)
    queries = [(q.promql, q.legend) for q in p.queries if q.promql is not None]
    if not queries:
        x, y, w, h = grid
        return {
            "type": "text",
            "title": p.title,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "options": {"mode": "markdown", "content": (
                "This panel queries spans, which Grafana's Prometheus data source cannot "
                f"read: see it in Watchkeeper at {base_url}/dashboards/{board_id}."
            )},
        }  # fmt: skip
    kind = "stat" if p.kind == "stat" else "table" if p.kind == "table" else "timeseries"
    out = panel(kind if kind != "table" else "stat", p.title, queries, p.unit, grid,
                p.description, p.stack)  # fmt: skip
    if kind == "table":
        out["type"] = "table"
        out["options"] = {"showHeader": True}
        for target in out["targets"]:
            target.update({"instant": True, "format": "table"})
    if p.value_map:
        out["fieldConfig"]["defaults"]["mappings"] = [
            {"type": "value", "options": {k: {"text": v} for k, v in p.value_map.items()}}
        ]
    return out


def grafana_dashboard(board: Board, base_url: str = "http://localhost:4318") -> Dashboard:
    """One of our dashboards as a Grafana JSON model (file `watchkeeper-<id>.json`)."""
    panels: list[dict[str, Any]] = []
    y = 0
    for section in board.sections:
        if section.title:
            panels.append({"type": "row", "title": section.title, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})  # fmt: skip
            y += 1
        for p in section.panels:
            panels.append(_panel(p, y, base_url, board.id))
        y += max((p.grid.y + p.grid.h for p in section.panels), default=0)
    model = dashboard(f"wk-{board.id}"[:40], board.title, panels, list(board.tags))
    model["description"] = board.description
    variables = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
    model["templating"]["list"] = variables + [_variable(v) for v in board.variables]
    return Dashboard(f"watchkeeper-{board.id}.json", model)
