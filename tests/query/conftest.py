"""A query API over a real DuckDB store, a real metadata store and two projects' keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.datagen import BASE_NS, Dataset, generate, scores_for
from watchkeeper.config import Config
from watchkeeper.server import _query_api
from watchkeeper.server._auth import KeyRing
from watchkeeper.server._roles import Role
from watchkeeper.server._services import Services
from watchkeeper.server.app import _error_handlers
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.meta import MetaStore

NOW_S = BASE_NS / 1e9 + 6 * 3600  # six hours after the first generated trace


@dataclass
class Api:
    """A client and what the server holds."""

    client: TestClient
    demo: Dataset
    other: Dataset
    demo_key: str
    other_key: str
    store: DuckDBStore

    def get(self, path: str, key: str | None = None, **params: object) -> object:
        """GET with the demo key (or another), returning the parsed JSON of a 200."""
        r = self.client.get(path, params=params, headers=self.auth(key or self.demo_key))
        assert r.status_code == 200, r.text
        return r.json()

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        """The header that carries a key."""
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    """The query router on an app with the server's error handling, with data in two projects."""
    store = DuckDBStore(None)
    demo, other = generate("demo", 300), generate("other", 120, seed=3)
    for data in (demo, other):
        store.write(data.batch())
    store.write_scores(scores_for("demo", sorted({s.trace_id for s in demo.spans})[:10]))
    meta = MetaStore("sqlite:///:memory:")
    meta.create_all()
    keys = KeyRing(meta)
    _, demo_key = keys.create("demo", role=Role.EDITOR)
    _, other_key = keys.create("other", role=Role.EDITOR)
    app = FastAPI()
    app.state.services = Services(
        config=Config(), store=store, meta=meta, keys=keys, registry=CollectorRegistry(),
        clock=lambda: NOW_S,
    )  # fmt: skip
    _error_handlers(app)
    app.include_router(_query_api.router)
    with TestClient(app) as client:
        yield Api(client, demo, other, demo_key, other_key, store)
    store.close()
    meta.close()
