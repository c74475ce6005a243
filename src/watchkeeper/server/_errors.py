"""Every error answer is `{"error": "..."}` (docs/api.md), Starlette's and FastAPI's too.

A server error (an exception no handler maps, a store or engine failure) answers 500 with a
message that names no internal path, query or engine text, and an error id; the server logs
the exception with its traceback under that id, once (`AnsweredErrors` keeps uvicorn from
logging it a second time). Only a `WatchkeeperError` raised on purpose (not `from` another
exception, whose text it may carry) is shown as it was written. When the metadata database
does not answer, the answer is 503 with Retry-After instead, logged in one line.

One exception: a browser that navigates to an unknown page (GET, `Accept: text/html`, not an
API path) gets the web UI's shell with status 404, and the UI shows its own not-found page.

Starlette answers an unknown path (404) or a method a route does not take (405) with
`{"detail": ...}`, and FastAPI a request that fails its own validation (a body that is not
a JSON object) with a 422 listing pydantic's errors. These handlers give them our shape;
the validation errors become a 400 that names the field, as our own parameter checks do.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper.errors import StoreError, StoreOutOfMemory, WatchkeeperError
from watchkeeper.query import shown

log = logging.getLogger("watchkeeper.server")

#: Seconds a client is asked to wait when the metadata database does not answer.
METADATA_RETRY_AFTER_S = 5
#: Retry-After (s) when the store's engine ran out of the memory it may use for a request.
OUT_OF_MEMORY_RETRY_AFTER_S = 5
MAX_PATH = 200  # characters of a request path repeated in a message
MAX_PROBLEMS = 3  # validation problems listed in one message
#: Paths of machine clients: their 404s stay JSON whatever they accept.
API_PREFIXES = ("/api/", "/v1/", "/prometheus/", "/metrics", "/healthz", "/readyz", "/openapi")


def _path(request: Request) -> str:
    path = request.url.path
    return path if len(path) <= MAX_PATH else path[:MAX_PATH] + "..."


def _page_for(request: Request) -> bytes | None:
    """The UI shell when a browser navigates to this unknown URL; None for API clients."""
    shell: bytes | None = getattr(request.app.state, "ui_shell", None)
    if shell is None or request.method not in ("GET", "HEAD"):
        return None
    if request.url.path.startswith(API_PREFIXES):
        return None
    return shell if "text/html" in request.headers.get("accept", "") else None


async def http_error(request: Request, exc: Exception) -> Response:
    """`{"error": ...}` for Starlette's HTTP errors (unknown route, method not allowed...)."""
    assert isinstance(exc, HTTPException)
    status, headers = exc.status_code, exc.headers
    if status in (204, 304):  # no body allowed
        return Response(status_code=status, headers=headers)
    if status == 404 and (page := _page_for(request)) is not None:
        return HTMLResponse(page, status_code=404, headers={"Cache-Control": "no-cache"})
    message = str(exc.detail)
    if status == 404 and message == "Not Found":
        message = f"nothing at {_path(request)}: see /docs for the API"
    elif status == 405:
        allowed = _allowed(request) or (headers or {}).get("Allow", "")
        headers = {**(headers or {}), "Allow": allowed}
        message = f"{request.method} is not allowed on {_path(request)} (allowed: {allowed})"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _allowed(request: Request) -> str:
    """Every method a path takes. Starlette's 405 names only the first route that matched
    the path, and each method of a path is a route of its own here."""
    path = request.url.path
    matched = [
        r
        for r in _leaves(request.app.router.routes)
        if getattr(r, "path_regex", None) is not None and r.path_regex.match(path)
    ]
    # /rules/test is its own resource, not the rule "test": fixed segments win, as they do
    # in the OpenAPI document.
    fewest = min((len(getattr(r, "param_convertors", {})) for r in matched), default=0)
    methods = {
        m
        for r in matched
        if len(getattr(r, "param_convertors", {})) == fewest
        for m in getattr(r, "methods", None) or ()
    }
    return ", ".join(sorted(methods))


def _leaves(routes: Any) -> Any:
    """The routes of a router, those of included routers too."""
    for route in routes:
        inner = getattr(route, "original_router", route)
        nested = getattr(inner, "routes", None)
        if nested is not None and inner is not route:
            yield from _leaves(nested)
        else:
            yield route


def _problem(error: dict[str, Any]) -> str:
    where, *name = (str(part) for part in error.get("loc", ("request",)))
    got = error.get("input")
    value = f"={shown(got)}" if where != "body" and isinstance(got, str) else ""
    return f"{'.'.join(name) or where}{value}: {error.get('msg', 'invalid')}"


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """A 400 `{"error": ...}` naming each field FastAPI's own validation refused."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    problems = [_problem(e) for e in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS} more")
    return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=400)


#: Where the scope remembers the exception `internal_error` answered and logged.
_ANSWERED = "watchkeeper.answered_error"


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that names no internals, and the exception logged with its traceback."""
    error_id = secrets.token_hex(4)
    client = request.client.host if request.client else "unknown"
    if isinstance(exc, sa.exc.OperationalError):
        return _metadata_down(request, exc, error_id, client)
    if isinstance(exc, StoreOutOfMemory):
        return _out_of_memory(request, exc, error_id, client)
    log.error(
        "error %s on %s %s from %s: %s: %s",
        error_id,
        request.method,
        _path(request),
        client,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    request.scope[_ANSWERED] = exc
    if isinstance(exc, WatchkeeperError) and exc.__cause__ is None:
        what = str(exc)  # written to be shown: no engine's or library's text inside
    elif isinstance(exc, StoreError):
        what = "the store failed on this request"
    else:
        what = "the server failed on this request"
    message = f"{what} (the server log has the details under error id {error_id})"
    return JSONResponse({"error": message}, status_code=500)


def _metadata_down(
    request: Request, exc: sa.exc.OperationalError, error_id: str, client: str
) -> JSONResponse:
    """503 with Retry-After when the metadata database does not answer (PostgreSQL restarting
    or out of reach): a client (an OTLP exporter) tries again instead of dropping what it sent.
    One log line each, not a traceback: while it lasts, every request that needs it fails."""
    reason = str(exc.orig or exc).strip().splitlines()[0]
    log.warning(
        "error %s on %s %s from %s: the metadata database does not answer: %s",
        error_id, request.method, _path(request), client, reason,
    )  # fmt: skip
    request.scope[_ANSWERED] = exc
    message = f"the metadata database does not answer; retry (error id {error_id})"
    headers = {"Retry-After": str(METADATA_RETRY_AFTER_S)}
    return JSONResponse({"error": message}, status_code=503, headers=headers)


def _out_of_memory(
    request: Request, exc: StoreOutOfMemory, error_id: str, client: str
) -> JSONResponse:
    """503 with Retry-After when the store's engine ran out of the memory it may use: the
    request may pass when fewer run at once, and the answer says what else to do. One log
    line with the engine's own text, not a traceback."""
    log.warning(
        "error %s on %s %s from %s: %s (%s)",
        error_id, request.method, _path(request), client, exc, exc.__cause__,
    )  # fmt: skip
    request.scope[_ANSWERED] = exc
    headers = {"Retry-After": str(OUT_OF_MEMORY_RETRY_AFTER_S)}
    return JSONResponse({"error": f"{exc} (error id {error_id})"}, status_code=503, headers=headers)


class AnsweredErrors:
    """ASGI middleware outside Starlette's: drops an exception `internal_error` already
    answered and logged, which Starlette raises again for the server to log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; re-raise only what was not answered."""
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if scope.get(_ANSWERED) is not exc:
                raise


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
