"""A browser's unknown URL gets the UI's not-found page (404), API paths keep their JSON 404,
and the key dialog asks for a key only when the server requires one (issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.server.conftest import ADMIN_TOKEN, Running

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _ready(page: Any) -> None:
    page.wait_for_selector("#main[aria-busy='false']", timeout=30_000)


@pytest.mark.browser
def test_an_unknown_page_is_the_ui_not_found_page_with_404(
    make_server: Callable[..., Running], new_page: Callable[..., Any]
) -> None:
    server = make_server()
    page = new_page(server)
    response = page.goto("/no/such/page")
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    _ready(page)
    assert page.locator("#main h1").inner_text() == "Not found"


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/v1/no-such-endpoint", HTML["Accept"]),
        ("/v1/no-such-signal", HTML["Accept"]),
        ("/no/such/page", "application/json"),
        ("/no/such/page", "*/*"),
    ],
)
@pytest.mark.slow
def test_api_clients_keep_the_json_404(
    make_server: Callable[..., Running], path: str, accept: str
) -> None:
    server = make_server()
    r = server.get(path, headers={"Accept": accept})
    assert r.status_code == 404
    assert r.json()["error"].startswith(f"nothing at {path}")


@pytest.mark.slow
def test_auth_endpoint_says_whether_a_key_is_required(
    make_server: Callable[..., Running],
) -> None:
    keyless, keyed = make_server(), make_server(auth={"admin_token": ADMIN_TOKEN})
    assert keyless.get("/api/v1/auth").json() == {"auth_required": False}
    assert keyed.get("/api/v1/auth").json() == {"auth_required": True}  # no key needed to ask
    assert httpx.get(keyed.url + "/api/v1/summary").status_code == 401


@pytest.mark.browser
def test_a_server_without_keys_never_asks_for_one(
    make_server: Callable[..., Running], new_page: Callable[..., Any]
) -> None:
    server = make_server()
    page = new_page(server, key="wk_left_from_another_server")  # a stale key is harmless
    page.goto("/traces")
    _ready(page)
    page.wait_for_timeout(500)  # the first requests have answered
    assert not page.locator("#auth-dialog").is_visible()
    page.locator("#key-button").click()
    page.locator("#auth-dialog").wait_for(state="visible")
    assert page.locator("#auth-title").inner_text() == "API key (optional)"
    assert "does not require" in page.locator("#auth-message").inner_text()


@pytest.mark.browser
def test_a_keyed_server_asks_for_a_key(
    make_server: Callable[..., Running], new_page: Callable[..., Any]
) -> None:
    server = make_server(auth={"admin_token": ADMIN_TOKEN})
    page = new_page(server)
    page.goto("/traces")
    page.locator("#auth-dialog").wait_for(state="visible", timeout=30_000)
    assert page.locator("#auth-title").inner_text() == "API key required"
