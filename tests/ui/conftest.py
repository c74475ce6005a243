"""A real Watchkeeper server (create_app + uvicorn on an ephemeral loopback port) loaded with a
known workload — bulk through the store, the rest through the real OTLP exporter — and a
headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import watchkeeper.alerting._tables  # noqa: F401  (declare the alert tables before create_all)
from tests.eventually import eventually
from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server._roles import Role
from watchkeeper.server.app import build_services, create_app

from . import _data

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
OTLP_PLAN = ["success"] * 10 + ["timeout"] * 2  # requests sent through OTLP by service search-api


@dataclass
class Server:
    """The running server, its API key and what was loaded into it."""

    url: str
    token: str
    expected: _data.Expected
    webhook_bodies: list[dict[str, Any]] = field(default_factory=list)

    def api(self, path: str, **params: Any) -> Any:
        """GET an API path with the key; the parsed JSON."""
        r = httpx.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {self.token}"}
        )
        r.raise_for_status()
        return r.json()


SLOS = [
    {
        "id": "chat-availability",
        "name": "Chat availability",
        "objective": 0.99,
        "filters": {"scope": "requests", "services": ["chat-api"]},
    },
    {
        "id": "chat-latency",
        "name": "Chat under 8 s",
        "sli": "latency",
        "objective": 0.95,
        "latency_threshold_ms": 8000,
    },
]


def _webhook_receiver(bodies: list[dict[str, Any]]) -> ThreadingHTTPServer:
    """A real HTTP endpoint on an ephemeral port that records what a webhook channel posts."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            bodies.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, name="webhook-receiver", daemon=True).start()
    return httpd


def send_otlp(
    url: str, token: str, service: str = "search-api", plan: list[str] = OTLP_PLAN
) -> None:
    """Requests of a service through the OpenTelemetry SDK and its OTLP/HTTP exporter."""
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment.name": "prod"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("ui-tests")
    for i, outcome in enumerate(plan):
        attrs = {
            "http.request.method": "GET",
            "http.route": "/search",
            "watchkeeper.outcome": outcome,
            "user.id": "otlp-user",
        }
        with tracer.start_as_current_span(
            "GET /search", kind=SpanKind.SERVER, attributes=attrs
        ) as root:
            with tracer.start_as_current_span(
                "embeddings text-embedding-3-small",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "embeddings",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "text-embedding-3-small",
                    "gen_ai.usage.input_tokens": 20 + i,
                },
            ):
                pass
            if outcome == "timeout":
                root.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
                root.set_attribute("error.type", "TimeoutError")
    provider.shutdown()


def wait_for(server: Server, service: str, count: int, timeout_s: float = 30.0) -> None:
    """Ingest is asynchronous (spool, then writer): wait until the spans are queryable."""
    got = eventually(
        lambda: server.api("/api/v1/summary", scope="requests", service=service, range="24h")[
            "count"
        ],
        timeout_s,
        0.2,
        until=lambda n: n >= count,
    )
    assert got >= count, f"only {got} of {count} OTLP requests of {service} became queryable"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One keyed server for the whole UI suite."""
    data_dir = tmp_path_factory.mktemp("ui-data")
    bodies: list[dict[str, Any]] = []
    receiver = _webhook_receiver(bodies)
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    alerting = {
        "slos": SLOS,
        "channels": [{"name": "team-webhook", "type": "webhook", "url": hook}],
    }
    config = load_config(
        env={},
        overrides={"server": {"data_dir": str(data_dir), "port": 0}, "alerting": alerting},
    )
    svc = build_services(config)
    batch, scores, expected = _data.build(time.time_ns())
    svc.store.write(batch)
    svc.store.write_scores(scores)
    _, token = svc.keys.create(_data.PROJECT, "ui-tests", role=Role.ADMIN)
    app = create_app(config, services=svc)
    with serve_in_thread(app, name="ui-test-server") as url:
        srv = Server(url, token, expected, bodies)
        send_otlp(srv.url, token)
        for outcome in OTLP_PLAN:
            expected.requests[outcome] += 1
            expected.services["search-api"] += 1
        wait_for(srv, "search-api", expected.services["search-api"])
        yield srv
    receiver.shutdown()


def _context(browser: Any, server: Server, scheme: str, with_key: bool) -> Any:
    ctx = browser.new_context(
        base_url=server.url, viewport={"width": 1440, "height": 900}, color_scheme=scheme
    )
    if with_key:
        ctx.add_init_script(f"localStorage.setItem('watchkeeper.apiKey', {server.token!r})")
    return ctx


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh light-theme page that already holds the API key; fails the test on JS errors."""
    ctx = _context(browser, server, "light", with_key=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # The shell sends a strict Content-Security-Policy: any violation is a bug of ours.
    pg.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def make_page(browser: Any, server: Server) -> Iterator[Any]:
    """Factory of pages with a chosen colour scheme and with or without the API key."""
    contexts: list[Any] = []

    def make(scheme: str = "light", with_key: bool = True) -> Any:
        ctx = _context(browser, server, scheme, with_key)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()
