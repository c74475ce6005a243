"""A real Watchkeeper (create_app + uvicorn on an ephemeral loopback port) for metric tests."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server._services import Services
from watchkeeper.server.app import build_services, create_app


@dataclass
class Server:
    """A served app with the metric paths a test uses."""

    url: str
    services: Services

    def flush(self) -> None:
        """Wait until everything acknowledged is in the metric store."""
        assert self.services.metrics_ingest.flush(30)

    def prom(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        """GET /prometheus/api/v1/<path>."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(
            f"{self.url}/prometheus/api/v1/{path}", params=params, headers=headers, timeout=30
        )

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample of the server's own registry (0 when absent)."""
        return self.services.registry.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with config overrides; all stop after the test."""
    made = itertools.count()
    with contextlib.ExitStack() as running:

        def make(**sections: Any) -> Server:
            data_dir = tmp_path / f"data{next(made)}"
            overrides = {"server": {"data_dir": str(data_dir), "port": 0}, **sections}
            config = load_config(env={}, overrides=overrides)
            svc = build_services(config)
            app = create_app(config, services=svc)
            url = running.enter_context(serve_in_thread(app, name="metrics-test-server"))
            return Server(url, svc)

        yield make


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """A server with the default configuration and auth off."""
    return make_server(auth={"required": False})
