"""The app factory: builds the services of one server process and the FastAPI app on them."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from watchkeeper.config import Config
from watchkeeper.dashboards import DashboardFiles
from watchkeeper.errors import (
    AuthError,
    BodyTimeout,
    Conflict,
    DataDirError,
    DecodeError,
    Forbidden,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    UnsupportedContentType,
    ValidationError,
    WatchkeeperError,
)
from watchkeeper.server import _errors, _openapi
from watchkeeper.server._access import open_access
from watchkeeper.server._audit_actor import local_origin
from watchkeeper.server._auth import KeyRing
from watchkeeper.server._heap_metrics import watch_heap
from watchkeeper.server._limits import install_limits
from watchkeeper.server._people_audit import people_recorder
from watchkeeper.server._retention import retention_loop
from watchkeeper.server._security import SecurityHeaders, install_docs
from watchkeeper.server._services import Services
from watchkeeper.server._sessions import COOKIE as SESSION_COOKIE
from watchkeeper.server._sessions import SECURE_COOKIE as SECURE_SESSION_COOKIE
from watchkeeper.server._signin import build_signin
from watchkeeper.server._span_metrics import SpanMetrics
from watchkeeper.server._store_metrics import watch_store
from watchkeeper.store import Store
from watchkeeper.store.logs import LogStore
from watchkeeper.store.meta import MetaStore
from watchkeeper.vault import Redactor

log = logging.getLogger("watchkeeper.server")


def open_data_dir(path: Path) -> IO[str]:
    """Create and lock the data directory; one server process owns it (DuckDB's rule)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = (path / ".lock").open("a+")
    except OSError as exc:
        raise DataDirError(
            f"data directory {path} cannot be created or written ({exc.strerror}); "
            "pick another with --data-dir or fix its permissions"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise DataDirError(
            f"data directory {path} is in use by another watchkeeper process; "
            "stop it or pick another with --data-dir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def open_store(config: Config) -> Store:
    """The span store the configuration names."""
    backend = config.store.backend
    if backend == "duckdb":
        from watchkeeper.store.duckdb import DuckDBStore

        return DuckDBStore(
            config.span_store_path,
            memory_limit_mb=config.store.memory_limit_mb,
            threads=config.store.threads,
            trace_window_s=config.store.trace_context_window_s,
        )
    from watchkeeper.store.clickhouse import ClickHouseStore  # backend clickhouse or chdb

    return ClickHouseStore(
        config.clickhouse_url,
        database=config.store.clickhouse_database,
        ttl_days=config.retention.days,
        trace_window_s=config.store.trace_context_window_s,
        # a crashed write is repaired by the server that replays its spool: the same name
        writer=f"{socket.gethostname()}:{config.server.data_dir.resolve()}",
    )


def open_log_store(config: Config) -> LogStore:
    """The log store: in the span store's ClickHouse database when the spans go to
    ClickHouse, else in its own DuckDB file."""
    if config.store.backend == "duckdb":
        from watchkeeper.store.duckdb_logs import DuckDBLogStore

        return DuckDBLogStore(config.logs_store_path, memory_limit_mb=config.side_memory_limit_mb)
    from watchkeeper.store.clickhouse_logs import ClickHouseLogStore

    return ClickHouseLogStore(
        config.clickhouse_url,
        database=config.store.clickhouse_database,
        ttl_days=config.logs.retention_days or config.retention.days,
    )


def _projects(config: Config, keys: KeyRing) -> Callable[[], list[str]]:
    """Projects that alert rules of project "*" apply to: the default one and every active
    key's."""
    default = config.auth.default_project

    def projects() -> list[str]:
        return sorted({default} | {k.project for k in keys.list() if k.revoked_at is None})

    return projects


def build_services(
    config: Config, *, store: Store | None = None, redactor: Redactor | None = None
) -> Services:
    """Open the stores and create every service of one server process (not yet started)."""
    # Imported before the metadata tables are created: they declare tables of their own.
    from watchkeeper.alerting import PromQLReader, Signals, build_alerting
    from watchkeeper.ingest import IngestService, LogsIngest, MetricsIngest, Scraper
    from watchkeeper.query import Engine
    from watchkeeper.store.metrics import MetricsStore

    lock = open_data_dir(config.server.data_dir)
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    watch_heap(registry)
    span_registry = CollectorRegistry()  # project data: served per key (see _ops.metrics)
    meta = MetaStore(config.meta_url)
    meta.create_all()
    store = store or open_store(config)
    watch_store(store, registry)
    # Per-project series on their own registry; the cap counter is health.
    span_metrics = SpanMetrics(span_registry, health=registry)
    admin = config.auth.admin_token.get_secret_value() if config.auth.admin_token else None
    svc = Services(
        config=config,
        store=store,
        meta=meta,
        keys=KeyRing(meta, config.auth.required, admin, registry=registry),
        registry=registry,
        span_registry=span_registry,
        extras={"data_dir_lock": lock},
        redactor=redactor or Redactor(),
    )
    svc.signin = build_signin(config, meta, svc.keys, registry)
    svc.signin.people.record = people_recorder(svc.audit)
    svc.ingest = IngestService(config, store, registry, on_written=span_metrics.observe)
    metrics_store = MetricsStore(
        config.metrics_store_path,
        max_series_per_project=config.metrics.max_series_per_project,
        memory_limit_mb=config.side_memory_limit_mb,
    )
    svc.metrics_ingest = MetricsIngest(config, metrics_store, registry)
    logs_store = open_log_store(config)
    svc.logs_ingest = LogsIngest(config, logs_store, registry)
    svc.scraper = Scraper(
        config.metrics.scrape, svc.metrics_ingest.accept_samples, config.auth.default_project
    )
    svc.dashboards = DashboardFiles(config.dashboards_dir)
    svc.alerting = build_alerting(
        config, store, meta, registry,
        redactor=svc.redactor, projects=_projects(config, svc.keys), clock=svc.clock,
        signals=Signals(PromQLReader(Engine(
            metrics_store, lookback_ms=int(config.metrics.lookback_delta_s * 1000),
            max_samples=config.metrics.query_max_samples,
        )), logs_store),
    )  # fmt: skip
    # A setting changed in the file or the environment since the last start is a change too.
    svc.audit.record_settings(
        config.model_dump(mode="json"), config.source, local_origin("watchkeeper serve")
    )
    return svc


def _error_handlers(app: FastAPI) -> None:
    statuses: dict[type[WatchkeeperError], int] = {
        Forbidden: 403,  # before its base class, AuthError
        AuthError: 401,
        NotFound: 404,
        Conflict: 409,
        ValidationError: 400,
        DecodeError: 400,
        BodyTimeout: 408,
        PayloadTooLarge: 413,
        UnsupportedContentType: 415,
    }

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        status = next((s for t, s in statuses.items() if isinstance(exc, t)), 500)
        if status == 500 and not isinstance(exc, Overloaded):  # the store's, a bug: no details
            return await _errors.internal_error(request, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, Overloaded):
            status, headers = 503, {"Retry-After": str(max(1, round(exc.retry_after)))}
        return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)

    async def disconnected(request: Request, _exc: Exception) -> JSONResponse:
        # Nobody reads this answer; it only ends the request without a 500 and a traceback.
        log.info("client disconnected before its request body was read: %s", request.url.path)
        return JSONResponse({"error": "client disconnected"}, status_code=400)

    app.add_exception_handler(WatchkeeperError, handle)
    _errors.install(app)  # Starlette's and FastAPI's own errors in the same shape
    app.add_exception_handler(ClientDisconnect, disconnected)


class _App(FastAPI):
    """FastAPI with `SecurityHeaders` outermost, so even last-resort 500s carry them, and
    `AnsweredErrors` inside it, so a 500's traceback is logged once."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, wrapped."""
        return SecurityHeaders(_errors.AnsweredErrors(super().build_middleware_stack()))


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc: Services = app.state.services
    stop = asyncio.Event()
    svc.ingest.start()
    svc.metrics_ingest.start()
    svc.logs_ingest.start()
    if svc.alerting is not None:
        await svc.alerting.start()
    retention = asyncio.create_task(retention_loop(svc, stop))
    scraping = asyncio.create_task(svc.scraper.run(stop))
    try:
        yield
    finally:
        stop.set()
        await retention
        await scraping
        if svc.alerting is not None:
            await svc.alerting.stop()
        await asyncio.to_thread(svc.ingest.stop)
        await asyncio.to_thread(svc.metrics_ingest.stop)
        await asyncio.to_thread(svc.logs_ingest.stop)
        svc.store.close()
        svc.metrics_ingest.store.close()
        svc.logs_ingest.store.close()
        svc.meta.close()
        svc.extras["data_dir_lock"].close()


def create_app(config: Config, *, services: Services | None = None) -> FastAPI:
    """The FastAPI app of `watchkeeper serve`: OTLP ingest, APIs, UI and /metrics."""
    from watchkeeper.server import (
        _alerts_api,
        _audit_api,
        _auth_api,
        _dashboards_api,
        _keys_api,
        _kinds_api,
        _logs_api,
        _oidc_api,
        _ops,
        _otlp,
        _otlp_metrics,
        _people_api,
        _prometheus_api,
        _query_api,
        _remote_write,
        _silences_api,
    )
    from watchkeeper.ui import mount_ui

    app = _App(
        title="Watchkeeper",
        version="0.1.0",
        description="Observability for AI services: OTLP ingest, query, alerting and SLO API.",
        lifespan=_lifespan,
        docs_url=None,  # served by install_docs, offline, with a CSP that fits the page
        redoc_url=None,
    )
    app.state.services = services or build_services(config)
    _error_handlers(app)
    install_limits(
        app,
        app.state.services.config.limits,
        app.state.services.registry,
        cookies=(SESSION_COOKIE, SECURE_SESSION_COOKIE),  # a session counts like a key
    )
    for module in (_ops, _otlp, _otlp_metrics, _remote_write, _query_api, _prometheus_api,
                   _alerts_api, _silences_api, _keys_api, _auth_api, _audit_api, _people_api,
                   _oidc_api, _kinds_api, _logs_api, _dashboards_api):  # fmt: skip
        app.include_router(module.router)
    install_docs(app)
    _openapi.install(app)
    mount_ui(app, dependencies=[Depends(open_access)])
    return app
