"""Dashboards: sections of panels of PromQL and span queries, as YAML files (the shipped
ones, among them the Infrastructure page, and the user's in the config directory), drawn by
the UI, saved through the API and exported to Grafana."""

from watchkeeper.dashboards._files import (
    ALL_PROJECTS,
    SHIPPED_DIR,
    DashboardFiles,
    Entry,
    Problem,
    dump_dashboard,
    read_dashboard,
)
from watchkeeper.dashboards._model import (
    GRID_COLUMNS,
    ID_PATTERN,
    SPAN_BY,
    SPAN_MEASURES,
    UNITS,
    VARIABLES,
    Dashboard,
    Grid,
    Panel,
    Query,
    Section,
    SpanQuery,
    parse_dashboard,
)

__all__ = [
    "ALL_PROJECTS",
    "GRID_COLUMNS",
    "ID_PATTERN",
    "SHIPPED_DIR",
    "SPAN_BY",
    "SPAN_MEASURES",
    "UNITS",
    "VARIABLES",
    "Dashboard",
    "DashboardFiles",
    "Entry",
    "Grid",
    "Panel",
    "Problem",
    "Query",
    "Section",
    "SpanQuery",
    "dump_dashboard",
    "parse_dashboard",
    "read_dashboard",
]
