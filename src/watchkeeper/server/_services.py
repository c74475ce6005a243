"""The services one server process runs, built once by the app factory and passed in.

Route modules reach them through `services(request)`; nothing is a module-level global.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry

from watchkeeper.alerting import AlertingEngine
from watchkeeper.config import Config
from watchkeeper.server._audit import AuditLog
from watchkeeper.server._auth import KeyRing
from watchkeeper.server._signin import SignIn
from watchkeeper.store import Store
from watchkeeper.store.meta import MetaStore
from watchkeeper.vault import Redactor


@dataclass
class Services:
    """Everything a request handler may need."""

    config: Config
    store: Store
    meta: MetaStore
    keys: KeyRing
    registry: CollectorRegistry  # the server's health: open on /metrics
    # span-derived series, labelled by project: on /metrics only for that project's key
    span_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    ingest: Any = None  # watchkeeper.ingest.IngestService
    metrics_ingest: Any = None  # watchkeeper.ingest.MetricsIngest (its store: .store)
    scraper: Any = None  # watchkeeper.ingest.Scraper (metrics.scrape jobs)
    logs_ingest: Any = None  # watchkeeper.ingest.LogsIngest (its store: .store)
    dashboards: Any = None  # watchkeeper.dashboards.DashboardFiles
    alerting: AlertingEngine | None = None  # when alerting is enabled
    signin: SignIn | None = None  # people, their sessions and single sign-on
    clock: Callable[[], float] = time.time
    extras: dict[str, Any] = field(default_factory=dict)
    # the secrets this process holds (channels'), scrubbed from logs and stored errors
    redactor: Redactor = field(default_factory=Redactor)
    audit: AuditLog = field(
        init=False
    )  # on the same meta DB, so changes and entries commit together

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.meta, self.clock)


def services(request: Request) -> Services:
    """The `Services` of the app serving this request."""
    svc: Services = request.app.state.services
    return svc


def describe(request: Request) -> str:
    """A request as a log line names it: method, path and client address."""
    client = request.client.host if request.client else "unknown"
    return f"{request.method} {request.url.path} from {client}"
