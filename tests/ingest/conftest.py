"""A real OTLP receiver for the ingest tests: our router on FastAPI + uvicorn on loopback.

The store is the real DuckDB store (in memory); the metadata store is SQLite in a temp dir.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tests.serving import serve_in_thread
from watchkeeper.config import Config, load_config
from watchkeeper.ingest import IngestService
from watchkeeper.model import SpanBatch
from watchkeeper.server import _otlp
from watchkeeper.server._auth import KeyRing
from watchkeeper.server._services import Services
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.meta import MetaStore

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass
class Receiver:
    """A running receiver and what a test needs to look inside it."""

    url: str
    services: Services
    ingest: IngestService
    store: Any  # DuckDBStore, or a test store wrapping one
    registry: CollectorRegistry

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample of the registry (0 when absent)."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0


class GatedStore:
    """A real DuckDB store whose writes wait for a gate: makes a backlog on demand."""

    def __init__(self) -> None:
        self.inner = DuckDBStore(None)
        self.gate = threading.Event()

    def write(self, batch: SpanBatch) -> int:
        """Wait for the gate, then write."""
        self.gate.wait(30)
        return self.inner.write(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def make_config(data_dir: Path, **ingest: Any) -> Config:
    """A config with the data dir under the test's tmp path and ingest overrides."""
    overrides: dict[str, Any] = {"server": {"data_dir": str(data_dir), "port": 0}}
    if ingest:
        overrides["ingest"] = ingest
    return load_config(env={}, overrides=overrides)


@pytest.fixture
def make_receiver(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start receivers with ingest config overrides; all are stopped after the test."""
    made = itertools.count()
    running = contextlib.ExitStack()

    def make(*, auth_required: bool | None = False, store: Any = None, **ingest: Any) -> Receiver:
        data_dir = tmp_path / f"data{next(made)}"
        config = make_config(data_dir, **ingest)
        data_dir.mkdir()
        meta = MetaStore(f"sqlite:///{data_dir}/meta.sqlite")
        meta.create_all()
        store = store or DuckDBStore(None)
        registry = CollectorRegistry()
        svc = Services(config, store, meta, KeyRing(meta, auth_required), registry)
        svc.ingest = IngestService(config, store, registry)
        app = FastAPI()
        app.state.services = svc
        app.include_router(_otlp.router)
        svc.ingest.start()
        # Closed in reverse: the HTTP server stops first, then ingest, the store, the meta DB.
        running.callback(meta.close)
        running.callback(store.close)
        running.callback(svc.ingest.stop)
        url = running.enter_context(serve_in_thread(app, name="ingest-test-server"))
        return Receiver(url, svc, svc.ingest, store, registry)

    with running:
        yield make


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    """A receiver with the default configuration and auth off."""
    return make_receiver()
