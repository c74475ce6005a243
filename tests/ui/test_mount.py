"""mount_ui serves the app shell and assets without shadowing the server's own paths."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from watchkeeper.ui import CLIENT_ROUTES, STATIC_DIR, mount_ui
from watchkeeper.ui._mount import asset_version, render_index

from .conftest import Server


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/traces",
        "/traces/0123456789abcdef0123456789abcdef",
        "/alerts/silences",
        "/slos",
        "/sessions",
        "/users",
        "/review",
    ],
)
@pytest.mark.slow
def test_client_routes_serve_the_shell(server: Server, path: str) -> None:
    r = httpx.get(server.url + path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert re.search(r'<script type="module" src="/ui/v/[0-9a-f]{12}/js/app.js">', r.text)
    assert r.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_assets_are_served_with_their_types(server: Server) -> None:
    js = httpx.get(server.url + "/ui/js/app.js")
    css = httpx.get(server.url + "/ui/css/app.css")
    svg = httpx.get(server.url + "/ui/favicon.svg")
    assert js.status_code == css.status_code == svg.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert css.headers["content-type"].startswith("text/css")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    again = httpx.get(server.url + "/ui/js/app.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(server.url + "/ui/js/nope.js").status_code == 404


def test_versioned_assets_are_immutable_and_change_with_content(
    server: Server, tmp_path: Path
) -> None:
    index = httpx.get(server.url + "/").text
    version = re.search(r"/ui/v/([0-9a-f]{12})/", index)
    assert version and version.group(1) == asset_version()
    js = httpx.get(f"{server.url}/ui/v/{version.group(1)}/js/pages/trace.js")
    assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
    assert "/ui/v/" not in js.text  # modules import relatively: the prefix carries through
    assert '"/ui/js/' not in index and '"/ui/css/' not in index
    # Another release (a changed file) gets another prefix.
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    (copy / "css" / "app.css").write_text((copy / "css" / "app.css").read_text() + "\n")
    assert asset_version(copy) != asset_version()
    assert (
        f"/ui/v/{asset_version(copy)}/js/app.js" in render_index(asset_version(copy), copy).decode()
    )


def test_server_paths_are_not_shadowed(server: Server) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/openapi.json").json()["info"]["title"] == "Watchkeeper"
    assert "text/plain" in httpx.get(server.url + "/metrics").headers["content-type"]
    assert httpx.get(server.url + "/docs").status_code == 200
    unknown = httpx.get(server.url + "/api/v1/no-such-endpoint")
    assert unknown.status_code == 404
    assert not unknown.headers["content-type"].startswith("text/html")
    assert httpx.get(server.url + "/v1/traces").status_code != 200  # POST-only ingest path


def test_mounting_first_does_not_shadow_routes_added_later() -> None:
    app = FastAPI()
    mount_ui(app)

    @app.get("/api/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    client = TestClient(app)
    assert client.get("/api/v1/ping").json() == {"pong": "yes"}
    assert client.get("/traces").headers["content-type"].startswith("text/html")
    assert "/" in CLIENT_ROUTES
    assert all(not p.startswith(("/api", "/v1", "/metrics", "/docs")) for p in CLIENT_ROUTES)


def test_every_module_is_preloaded_and_every_preload_exists() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'rel="modulepreload" href="/ui/([^"]+)"', index))
    modules = {str(p.relative_to(STATIC_DIR)) for p in STATIC_DIR.rglob("*.js")}
    assert preloaded == modules - {"js/app.js"}


def test_no_asset_is_fetched_from_another_origin() -> None:
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text()
            assert not re.search(
                r"(src|href)=\"https?://|url\(https?://|import .* from \"https?://", text
            ), path
