"""ASGI middleware: a server span and RED metrics per request, a request deadline, `/metrics`.

Pure ASGI (no Starlette import), so it wraps FastAPI, Starlette or any ASGI app. The route
template (`/users/{id}`) comes from Starlette's `scope["route"]` once routing has happened;
without it the `http.route` attribute and label stay empty (raw paths would explode cardinality).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from watchkeeper.errors import ConfigError
from watchkeeper.model import conventions as c
from watchkeeper.sdk import _runtime
from watchkeeper.sdk._context import ATTRS, REQUEST, RequestState
from watchkeeper.sdk._safe import report_failure
from watchkeeper.sdk._span import classify_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
_PROPAGATOR = TraceContextTextMapPropagator()


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template, mount prefixes included ("" when not routed)."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    if not isinstance(path, str):
        return ""
    mounted = str(scope.get("root_path", ""))[len(root_path) :]
    return mounted + path


def request_outcome(status: int | None, error: BaseException | None, timed_out: bool) -> str:
    """Outcome of a request from what happened to it (guards may add fallback/timeout)."""
    if timed_out or status in (408, 504):
        return "timeout"
    if error is not None:
        return classify_error(error)
    if status is None or status >= 500:
        return "error"
    return "success"


async def metrics_response(send: Send, registry: Any) -> None:
    """Answer with the registry's metrics in the Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    body = generate_latest(registry)
    headers = [
        (b"content-type", CONTENT_TYPE_LATEST.encode()),
        (b"content-length", b"%d" % len(body)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def metrics_app(registry: Any = None) -> ASGIApp:
    """An ASGI app serving `/metrics` (mount it, or route to it); default: the SDK's registry."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await metrics_response(send, registry if registry is not None else _runtime.registry())

    return app


class _Exchange:
    """One request's facts as the response goes out."""

    __slots__ = ("started", "status")

    def __init__(self) -> None:
        self.started = False
        self.status: int | None = None


class _ServerSpan:
    """The server span of one request, current while the app runs."""

    def __init__(self, rt: _runtime.Runtime, scope: Scope, method: str) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or ()}
        parent = _PROPAGATOR.extract(carrier=headers)
        attrs: dict[str, Any] = {
            c.WK_OPERATION: "http",
            c.HTTP_REQUEST_METHOD: method,
            c.URL_PATH: scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if "user-agent" in headers:
            attrs["user_agent.original"] = headers["user-agent"]
        self.rt = rt
        self.method = method
        self.root_path = str(scope.get("root_path", ""))
        ctx_attrs = ATTRS.get()
        if ctx_attrs:
            attrs = {**ctx_attrs, **attrs}
        self.span = rt.tracer.start_span(method, parent, SpanKind.SERVER, attrs)
        self.token = otel_context.attach(trace.set_span_in_context(self.span, parent))
        self.state = RequestState()
        self.state_token = REQUEST.set(self.state)
        self.t0 = time.perf_counter()

    def finish(
        self,
        scope: Scope,
        ex: _Exchange,
        error: BaseException | None,
        timed_out: bool,
        deadline: float | None,
    ) -> None:
        """End the span and record the request's metrics."""
        duration = time.perf_counter() - self.t0
        status = ex.status if ex.status is not None else (500 if error is not None else None)
        route = route_template(scope, self.root_path)
        span = self.span
        if route:
            span.update_name(f"{self.method} {route}")
            span.set_attribute(c.HTTP_ROUTE, route)
        if status is not None:
            span.set_attribute(c.HTTP_RESPONSE_STATUS_CODE, status)
        outcome = request_outcome(status, error, timed_out)
        if outcome == "success" and self.state.outcome is not None:
            outcome = self.state.outcome
        span.set_attribute(c.WK_OUTCOME, outcome)
        if self.state.attributes:
            span.set_attributes(self.state.attributes)
        if error is not None and not isinstance(error, asyncio.CancelledError):
            span.record_exception(error)
            span.set_attribute(c.ERROR_TYPE, type(error).__qualname__)
        elif timed_out:
            span.set_attribute(c.ERROR_TYPE, "timeout")
        elif status is not None and status >= 500:
            span.set_attribute(c.ERROR_TYPE, str(status))
        if outcome in ("error", "timeout") or (status is not None and status >= 500):
            span.set_status(Status(StatusCode.ERROR))
        REQUEST.reset(self.state_token)
        otel_context.detach(self.token)
        span.end()
        label = "" if status is None else str(status)
        self.rt.metrics.http_duration.observe((self.method, route, label), duration, deadline)


class WatchkeeperMiddleware:
    """Traces and measures every HTTP request, and answers `timeout_status` past `deadline`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        deadline: float | None = 8.0,
        timeout_status: int = 504,
        metrics_path: str | None = "/metrics",
        exclude_paths: Sequence[str] = (),
        registry: Any = None,
        trace_header: str | None = "x-trace-id",
    ) -> None:
        if deadline is not None and deadline <= 0:
            raise ConfigError(
                f"WatchkeeperMiddleware: deadline={deadline!r}; give seconds > 0 or None"
            )
        self.app = app
        self.deadline = deadline
        self.timeout_status = timeout_status
        self.metrics_path = metrics_path
        self.exclude_paths = frozenset(exclude_paths)
        self.registry = registry
        # The trace id goes back to the client, which can then attach feedback to the trace.
        self.trace_header = trace_header.lower().encode("latin-1") if trace_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.metrics_path is not None and path == self.metrics_path:
            registry = self.registry if self.registry is not None else _runtime.registry()
            await metrics_response(send, registry)
            return
        rt = _runtime._current
        if rt is None or path in self.exclude_paths:
            await self._run(scope, receive, send, _Exchange())
            return
        await self._traced(rt, scope, receive, send)

    async def _traced(
        self, rt: _runtime.Runtime, scope: Scope, receive: Receive, send: Send
    ) -> None:
        method = str(scope.get("method", "GET")).upper()
        method = method if method in _KNOWN_METHODS else "_OTHER"
        try:
            server = _ServerSpan(rt, scope, method)
        except Exception as exc:
            report_failure("middleware.start", exc)
            await self._run(scope, receive, send, _Exchange())
            return
        active = rt.metrics.http_active.labels(method)
        active.inc()
        ex, error, timed_out = _Exchange(), None, False
        extra: tuple[tuple[bytes, bytes], ...] = ()
        if self.trace_header is not None:
            trace_id = format(server.span.get_span_context().trace_id, "032x").encode()
            extra = ((self.trace_header, trace_id),)
        try:
            timed_out = await self._run(scope, receive, send, ex, extra)
        except BaseException as exc:
            error = exc
            raise
        finally:
            active.dec()
            try:
                server.finish(scope, ex, error, timed_out, self.deadline)
            except Exception as exc:
                report_failure("middleware.finish", exc)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        ex: _Exchange,
        extra_headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> bool:
        """Run the app within the deadline; True when the deadline cut it short."""

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                ex.started, ex.status = True, int(message["status"])
                if extra_headers:
                    message = {**message, "headers": [*message.get("headers", ()), *extra_headers]}
            await send(message)

        if self.deadline is None:
            await self.app(scope, receive, send_wrapper)
            return False
        try:
            async with asyncio.timeout(self.deadline) as limit:
                await self.app(scope, receive, send_wrapper)
        except TimeoutError:
            if not limit.expired():
                raise
            if not ex.started:
                await self._deadline_response(send_wrapper)
            return True
        return False

    async def _deadline_response(self, send: Send) -> None:
        body = json.dumps({"error": f"request deadline of {self.deadline:g}s exceeded"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send(
            {"type": "http.response.start", "status": self.timeout_status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})
