"""Security headers on every response, and the API docs pages with a policy that fits them.

Every response gets a Content-Security-Policy (the UI's, unless the route set its own),
`X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and frame denial. The
interactive docs (`/docs`, `/redoc`) load Swagger UI and ReDoc from this server (the files
the `fastapi-offline` package ships, so the pages work offline) and run one inline script:
their policy allows this origin and that script's hash, nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.server._access import open_access
from watchkeeper.ui import CONTENT_SECURITY_POLICY

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
DOCS_ASSETS_URL = "/docs-assets"
#: Swagger UI's and ReDoc's files, as a maintained package ships them.
DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))
_FAVICON = "/ui/favicon.svg"

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


class SecurityHeaders:
    """ASGI middleware: adds `SECURITY_HEADERS` a response does not already carry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; complete the headers of the response that comes back."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def docs_policy(page: bytes) -> str:
    """The CSP of a docs page: this origin's assets and the exact inline scripts it holds."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; "
        # ReDoc styles itself with <style> elements it writes at run time.
        "style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; "
        "connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def _with_policy(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = docs_policy(bytes(response.body))
    return response


def install_docs(app: FastAPI) -> None:
    """`/docs` and `/redoc` with their assets, each page with its own CSP (no OAuth2
    redirect page: keys are bearer)."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.include_router(docs_router(app.title, app.openapi_url or "/openapi.json"))


def docs_router(title: str, openapi_url: str) -> APIRouter:
    """The `/docs` and `/redoc` pages (their assets are mounted by `install_docs`)."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(open_access)])

    @router.get(DOCS_URL)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{title} - Swagger UI",
                oauth2_redirect_url=None,
                swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=root + _FAVICON,
                # No badge fetched from the public validator: the page stays on this origin.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @router.get(REDOC_URL)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_policy(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=root + _FAVICON,
                with_google_fonts=False,
            )
        )

    return router
