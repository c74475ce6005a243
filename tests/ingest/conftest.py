"""A real OTLP receiver for the ingest tests: our router on FastAPI + uvicorn on loopback.

The store is the real DuckDB store (in memory); the metadata store is SQLite in a temp dir.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

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


def _serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, int]:
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=uv.run, name="ingest-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return uv, thread, uv.servers[0].sockets[0].getsockname()[1]


@pytest.fixture
def make_receiver(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start receivers with ingest config overrides; all are stopped after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread, Receiver]] = []

    def make(*, auth_required: bool | None = False, store: Any = None, **ingest: Any) -> Receiver:
        data_dir = tmp_path / f"data{len(running)}"
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
        uv, thread, port = _serve(app)
        rec = Receiver(f"http://127.0.0.1:{port}", svc, svc.ingest, store, registry)
        running.append((uv, thread, rec))
        return rec

    yield make
    for uv, thread, rec in running:
        uv.should_exit = True
        thread.join(timeout=30)
        rec.ingest.stop()
        rec.store.close()
        rec.services.meta.close()


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    """A receiver with the default configuration and auth off."""
    return make_receiver()
