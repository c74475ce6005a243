"""Mounting the single-page app on a FastAPI app."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

#: Client-side routes answered with index.html; the app's router reads the path itself.
CLIENT_ROUTES: tuple[str, ...] = (
    "/",
    "/overview",
    "/traces",
    "/traces/{trace_id}",
    "/sessions",
    "/users",
    "/alerts",
    "/alerts/{tab}",
    "/slos",
    "/slos/{slo_id}",
    "/review",
)

# The shell must never be cached stale after an upgrade; assets revalidate by ETag, which
# costs one 304 per file and keeps the no-build-step setup free of fingerprinted names.
_NO_CACHE = {"Cache-Control": "no-cache"}
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
    ),
}


class _RevalidatedFiles(StaticFiles):
    """Static files that browsers revalidate on each load (cheap 304s via ETag)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Serve one asset with `Cache-Control: no-cache`."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_NO_CACHE)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html", headers={**_NO_CACHE, **_SECURITY}
    )


def mount_ui(app: FastAPI) -> None:
    """Serve the UI: assets under `/ui/`, index.html on each client route."""
    for path in CLIENT_ROUTES:
        app.add_api_route(
            path,
            _index,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            name=f"ui:{path}",
            response_class=FileResponse,
        )
    app.mount("/ui", _RevalidatedFiles(directory=STATIC_DIR), name="ui")
