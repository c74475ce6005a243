"""A real Watchkeeper app (create_app + uvicorn on an ephemeral loopback port) in this process."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.serving import serve_in_thread
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


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start servers with config overrides (`auth={...}` etc.); all stop after the test."""
    made = itertools.count()
    with contextlib.ExitStack() as running:

        def make(**sections: Any) -> Running:
            data_dir = tmp_path / f"data{next(made)}"
            overrides = {"server": {"data_dir": str(data_dir), "port": 0}, **sections}
            config = load_config(env={}, overrides=overrides)
            svc = build_services(config)
            app = create_app(config, services=svc)
            url = running.enter_context(serve_in_thread(app, name="server-test"))
            return Running(url, svc, app)

        yield make


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
