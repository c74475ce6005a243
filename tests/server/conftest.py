"""A real Watchkeeper app (create_app + uvicorn on an ephemeral loopback port) in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from watchkeeper.config import load_config
from watchkeeper.server._services import Services
from watchkeeper.server.app import build_services, create_app

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


@dataclass
class Running:
    """A served app: its URL, its services and the app itself."""

    url: str
    services: Services
    app: FastAPI

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """GET `path`, with `Authorization: Bearer <token>` when a token is given."""
        return self.request("GET", path, token, **kwargs)

    def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Any request, with `Authorization: Bearer <token>` when a token is given."""
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


def eventually(check: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    """True as soon as `check()` is; False when it is still false after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every_s)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start servers with config overrides (`auth={...}` etc.); all stop after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def make(**sections: Any) -> Running:
        data_dir = tmp_path / f"data{len(running)}"
        overrides = {"server": {"data_dir": str(data_dir), "port": 0}, **sections}
        config = load_config(env={}, overrides=overrides)
        svc = build_services(config)
        app = create_app(config, services=svc)
        uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=uv.run, name="server-test", daemon=True)
        thread.start()
        if not eventually(lambda: uv.started or not thread.is_alive(), 60):
            raise RuntimeError("the test server did not start")
        if not uv.started:
            raise RuntimeError("the test server exited while starting")
        running.append((uv, thread))
        port = uv.servers[0].sockets[0].getsockname()[1]
        return Running(f"http://127.0.0.1:{port}", svc, app)

    yield make
    for uv, thread in running:
        uv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages on a server, with an optional key in local storage; JS errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(server: Running, key: str | None = None) -> Any:
        ctx = browser.new_context(base_url=server.url)
        if key:
            ctx.add_init_script(f"localStorage.setItem('watchkeeper.apiKey', {key!r})")
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, errors
