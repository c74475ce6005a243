"""`/docs` and `/redoc` render with no network but the server's (issue 15): Swagger UI and
ReDoc come from the package, under a CSP of 'self' and the inline script's hash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server.conftest import Running

pytestmark = pytest.mark.browser


@pytest.fixture
def offline_page(browser: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page that may reach 127.0.0.1 only; (page, requests blocked, console errors)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    ctx.route("**/*", only_loopback)
    page = ctx.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page, blocked, errors
    ctx.close()


def test_swagger_ui_renders_the_operations_offline(
    make_server: Callable[..., Running], offline_page: tuple[Any, list[str], list[str]]
) -> None:
    server = make_server()
    page, blocked, errors = offline_page
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/v1/traces" in paths and "/api/v1/summary" in paths, paths
    assert blocked == [] and errors == []


def test_redoc_renders_offline(
    make_server: Callable[..., Running], offline_page: tuple[Any, list[str], list[str]]
) -> None:
    server = make_server()
    page, blocked, errors = offline_page
    page.goto(server.url + "/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    page.get_by_text("/api/v1/summary").first.wait_for(state="attached", timeout=30_000)
    # ReDoc's bundle links its "API docs by Redocly" badge from its CDN; the policy keeps
    # that one image out, which the page does not need.
    badge = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert blocked == [] and [e for e in errors if badge not in e] == []
