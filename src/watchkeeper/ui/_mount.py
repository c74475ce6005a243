"""Mounting the single-page app on a FastAPI app."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

#: Client-side routes answered with index.html; the app's router reads the path itself.
CLIENT_ROUTES: tuple[str, ...] = (
    "/",
    "/overview",
    "/traces",
    "/traces/{trace_id}",
    "/logs",
    "/sessions",
    "/users",
    "/alerts",
    "/alerts/{tab}",
    "/slos",
    "/slos/{slo_id}",
    "/review",
    "/infrastructure",
    "/explore",
    "/dashboards",
    "/dashboards/{board_id}",
    "/audit",
    "/signin",
    "/account",
    "/admin/people",
)

_NO_CACHE = "no-cache"
# Versioned asset URLs change whenever any asset changes, so browsers may keep them forever.
_IMMUTABLE = "public, max-age=31536000, immutable"
#: The UI's policy; the server sends it on every response that does not set its own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}


class _Assets(StaticFiles):
    """Static files with one Cache-Control policy for all of them."""

    def __init__(self, directory: Path, cache_control: str) -> None:
        super().__init__(directory=directory)
        self._cache_control = cache_control

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Serve one asset with this mount's caching policy."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = self._cache_control
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def asset_version(directory: Path = STATIC_DIR) -> str:
    """A short hash of every asset's path and content: it changes when any file changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def render_index(version: str, directory: Path = STATIC_DIR) -> bytes:
    """index.html with its asset URLs under `/ui/v/<version>/`.

    Modules import each other by relative paths, so the whole import graph (and the pages
    loaded later) resolves under the same versioned prefix and is cached as one release.
    """
    html = (directory / "index.html").read_text(encoding="utf-8")
    return html.replace('"/ui/', f'"/ui/v/{version}/').encode()


def mount_ui(app: FastAPI, dependencies: Sequence[Depends] = ()) -> None:
    """Serve the UI: index.html on each client route, assets under `/ui/` and `/ui/v/<hash>/`.

    `dependencies` go on each client route: the server declares them open to anyone (the
    shell holds no data; the pages ask the API, which checks the caller's role).
    """
    version = asset_version()
    index = render_index(version)
    app.state.ui_shell = index  # the server answers a browser's unknown URL with it (404)
    headers = {"Cache-Control": _NO_CACHE, **_SECURITY}

    def shell() -> HTMLResponse:
        return HTMLResponse(index, headers=headers)

    for path in CLIENT_ROUTES:
        app.add_api_route(
            path,
            shell,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            name=f"ui:{path}",
            response_class=HTMLResponse,
            dependencies=dependencies,
        )
    app.mount(f"/ui/v/{version}", _Assets(STATIC_DIR, _IMMUTABLE), name="ui-versioned")
    # Unversioned paths stay valid (bookmarks, tools) and revalidate on every use.
    app.mount("/ui", _Assets(STATIC_DIR, _NO_CACHE), name="ui")
