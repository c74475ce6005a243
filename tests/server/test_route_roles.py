"""Every route × every credential on a real server, against the role the route declares.

The expected answer of each request comes from what the route declares (`_access.declared`):
a route that declares nothing fails the first test, so no route ships without a role. The
walk covers every route of the app, those outside the OpenAPI document too (/metrics, the UI
shell, the docs pages); the few Starlette routes that cannot declare (the OpenAPI document,
static assets) are named below and checked open.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.alerting._receiver import Receiver
from tests.eventually import eventually
from tests.server.conftest import ADMIN_TOKEN, Running
from watchkeeper.server._access import Need, declared
from watchkeeper.server._roles import Role
from watchkeeper.server._sessions import COOKIE

PROJECT = "shop"
RULE = {"kind": "latency", "statistic": "p95", "threshold": 500, "window": "5m"}
SLO = {"id": "shop-avail", "project": PROJECT, "objective": "99%", "filters": {"scope": "requests"}}
#: Starlette routes that cannot carry a dependency: open by design (no project data).
UNDECLARABLE = {"/openapi.json": "/openapi.json", "/ui": "/ui/index.html",
                "/docs-assets": "/docs-assets/swagger-ui.css"}  # fmt: skip
#: Sent to every route; the ones that take them need them (breakdowns need `by`).
QUERY = {"range": "1h", "by": "service"}
#: An empty remote-write request (a WriteRequest without series), snappy-compressed.
EMPTY_WRITE = b"\x00"
SNAPPY = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
#: The Prometheus API's own parameters (its routes refuse a request without them).
PROMETHEUS_QUERY = {"query": "up", "start": "0", "end": "60", "step": "15", "match[]": "up"}
#: Open routes whose answer in this world is not a 2xx: single sign-on is not configured.
OPEN_ANSWERS = {("GET", "/api/v1/oidc/login"): 404, ("GET", "/api/v1/oidc/callback"): 404}
PASSWORD = "matrix password 0123"
NEW = "matrix password 4567"
#: A person every people route may act on.
TARGET = "matrix-target"
_ids = itertools.count()


@dataclass
class Credential:
    """One way a request may present itself: `role` for a valid key or a person's session,
    `admin_token` for the admin token or a server administrator's session."""

    label: str
    headers: dict[str, str] = field(default_factory=dict)
    secret: str | None = None
    role: Role | None = None
    admin_token: bool = False
    valid: bool = True
    person: bool = False

    def expected(self, needs: set[Need]) -> int:
        """The status class (200, 401 or 403) the route's declarations promise."""
        worst = 200
        for need in needs:
            worst = max(worst, self._expected(need))
        return worst

    def _expected(self, need: Need) -> int:
        sent = bool(self.headers)
        if need.credential == "ignored" or (need.credential == "optional" and not sent):
            return 200
        if not sent or not self.valid:
            return 401
        if need.credential == "optional":
            return 200
        if need.person:
            return 200 if self.person else 403
        assert need.role is not None
        if self.admin_token:
            return 200 if need.admin_token else 403
        assert self.role is not None
        if need.server_admin:
            return 403
        return 200 if self.role.grants(need.role) else 403


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _credentials(server: Running) -> list[Credential]:
    keys = server.services.keys
    creds = [Credential("no credential", valid=False)]
    for role in Role:
        _, token = keys.create(PROJECT, f"matrix-{role}", role=role)
        creds.append(Credential(f"{role} key", _bearer(token), token, role))
    creds.append(Credential("admin token", _bearer(ADMIN_TOKEN), ADMIN_TOKEN, admin_token=True))
    revoked, token = keys.create(PROJECT, "revoked", role=Role.ADMIN)
    keys.revoke(revoked.key_id)
    creds.append(Credential("revoked key", _bearer(token), token, valid=False))
    wrong = "wk_" + "x" * 43
    creds.append(Credential("unknown key", _bearer(wrong), wrong, valid=False))
    creds.append(Credential("unknown X-API-Key", {"X-API-Key": wrong}, wrong, valid=False))
    basic = "c2VjcmV0"  # base64 of "secret"
    creds.append(Credential("malformed", {"Authorization": f"Basic {basic}"}, basic, valid=False))
    creds.append(Credential("bearer without a key", {"Authorization": "Bearer"}, valid=False))
    return creds + _sessions(server)


def _signed_in(server: Running, username: str) -> tuple[str, dict[str, str]]:
    """A session of `username`: its cookie token, and the headers a browser would send
    (the cookie, and the CSRF token every change needs)."""
    r = server.request("POST", "/api/v1/session", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.cookies[COOKIE]
    return token, {"Cookie": f"{COOKIE}={token}", "X-CSRF-Token": r.json()["csrf_token"]}


def _sessions(server: Running) -> list[Credential]:
    """A person signed in with each role in the project, a server administrator (no role),
    and a session that has ended."""
    assert server.services.signin is not None
    people = server.services.signin.people
    creds = []
    for role in Role:
        people.create(f"matrix-{role}", PASSWORD, actor="test")
        people.set_role(f"matrix-{role}", PROJECT, role, actor="test")
        token, headers = _signed_in(server, f"matrix-{role}")
        creds.append(Credential(f"{role} person", headers, token, role, person=True))
    people.create("matrix-root", PASSWORD, admin=True, actor="test")
    token, headers = _signed_in(server, "matrix-root")
    creds.append(Credential("server admin person", headers, token, admin_token=True, person=True))
    token, headers = _signed_in(server, f"matrix-{Role.ADMIN}")
    server.request("DELETE", "/api/v1/session", headers=headers)
    creds.append(Credential("ended session", headers, token, valid=False))
    return creds


@dataclass
class World:
    """A server with something behind every route: a trace, rules, a silence, a channel."""

    server: Running
    admin: dict[str, str]
    trace_id: str

    def fresh(self, method: str, path: str) -> tuple[dict[str, str], Any]:
        """Path parameters and JSON body for one request (a new victim for each delete)."""
        n = next(_ids)
        params = {"trace_id": self.trace_id, "rule_id": "matrix", "name": "hook",
                  "slo_id": SLO["id"], "tab": "rules", "key_id": "0" * 16,
                  "silence_id": "none", "board_id": "matrix"}  # fmt: skip
        if method == "DELETE" and "{rule_id}" in path:
            params["rule_id"] = self._post("/api/v1/rules", {**RULE, "id": f"gone-{n}"})["id"]
        if method == "DELETE" and "{board_id}" in path:
            params["board_id"] = self._post("/api/v1/dashboards", _board(f"gone-{n}"))["dashboard"][
                "id"
            ]
        if method == "DELETE" and "{silence_id}" in path:
            params["silence_id"] = self._post("/api/v1/silences", _silence())["id"]
        if method == "DELETE" and "{key_id}" in path:
            key, _ = self.server.services.keys.create(PROJECT, role=Role.INGEST)
            params["key_id"] = key.key_id
        if "{username}" in path:
            params.update(project=PROJECT, username=TARGET)
            if method == "DELETE":
                self.people.set_role(TARGET, PROJECT, Role.VIEWER, actor="test")
        bodies: dict[str, Any] = {
            "/api/v1/rules": {**RULE, "id": f"new-{n}"},
            "/api/v1/rules/{rule_id}": RULE,
            "/api/v1/rules/test": {**RULE, "id": "draft"},
            "/api/v1/silences": _silence(),
            "/api/v1/dashboards": _board(f"new-{n}"),
            "/api/v1/dashboards/{board_id}": _board("matrix"),
            "/api/v1/scores": {"trace_id": self.trace_id, "name": "thumbs", "value": 1},
            "/api/v1/keys": {"project": PROJECT},
            "/v1/traces": {"resourceSpans": []},
            "/v1/metrics": {"resourceMetrics": []},
            "/v1/logs": {"resourceLogs": []},
            "/api/v1/rules/prometheus": {"groups": []},
            "/api/v1/session": {"username": TARGET, "password": PASSWORD},
            # Each person changes theirs once, to the same new one: a session goes on.
            "/api/v1/session/password": {"current_password": PASSWORD, "new_password": NEW},
            "/api/v1/people": {"username": f"new-{n}", "password": PASSWORD},
            "/api/v1/people/{username}": {"disabled": False},
            "/api/v1/members/{project}/{username}": {"role": "viewer"},
        }
        return params, bodies.get(path) if method in ("POST", "PUT", "PATCH") else None

    @property
    def people(self) -> Any:
        """The server's people (`_people.People`)."""
        assert self.server.services.signin is not None
        return self.server.services.signin.people

    def _post(self, path: str, body: Any) -> dict[str, Any]:
        r = self.server.request("POST", path, json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        return dict(r.json())


def _board(board_id: str) -> dict[str, Any]:
    panel = {"title": "up", "queries": [{"promql": "up"}]}
    return {"id": board_id, "title": board_id, "sections": [{"panels": [panel]}]}


def _silence() -> dict[str, Any]:
    return {"matchers": ["service=chat"], "duration": "1h", "comment": "matrix"}


def _spans(n: int) -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        with provider.get_tracer("t").start_as_current_span(f"op-{i}"):
            pass
    return list(memory.get_finished_spans())


@pytest.fixture
def server(make_server: Callable[..., Running], receiver: Receiver) -> Running:
    alerting = {"interval": 3600, "slos": [SLO],
                "channels": [{"type": "webhook", "name": "hook", "url": receiver.url}]}  # fmt: skip
    return make_server(auth={"admin_token": ADMIN_TOKEN}, alerting=alerting)


@pytest.fixture
def world(server: Running) -> World:
    _, ingest = server.services.keys.create(PROJECT, "app", role=Role.INGEST)
    _, admin = server.services.keys.create(PROJECT, "setup", role=Role.ADMIN)
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers=_bearer(ingest))
    assert exporter.export(_spans(3)) is SpanExportResult.SUCCESS
    traces: list[dict[str, Any]] = []

    def stored() -> bool:
        traces[:] = server.get("/api/v1/traces", admin, params={"range": "1h"}).json()["items"]
        return bool(traces)

    assert eventually(stored, 30), "the exported spans never reached the store"
    w = World(server, _bearer(admin), traces[0]["trace_id"])
    w.people.create(TARGET, PASSWORD, actor="test")
    w._post("/api/v1/rules", {**RULE, "id": "matrix"})
    w._post("/api/v1/dashboards", _board("matrix"))
    return w


def _api_routes(server: Running) -> list[RouteContext]:
    """Every FastAPI route, with what the routers it was included through add."""
    contexts = iter_route_contexts(server.app.routes)
    return [r for r in contexts if isinstance(r.original_route, APIRoute)]


@pytest.mark.slow
def test_every_route_declares_what_it_needs(server: Running) -> None:
    app = server.app
    routes = _api_routes(server)
    undeclared = [f"{sorted(r.methods or ())} {r.path}" for r in routes if not declared(r)]
    assert undeclared == [], "routes without a declared role (use _access.needs(...))"
    contexts = iter_route_contexts(app.routes)
    others = [r.path for r in contexts if not isinstance(r.original_route, APIRoute)]
    unknown = [p for p in others if p not in UNDECLARABLE and not p.startswith("/ui/v/")]
    assert unknown == [], "Starlette routes that declare nothing; use an APIRoute"
    # The walk below covers the whole OpenAPI document, and more.
    walked = {(m, r.path) for r in routes for m in r.methods or ()}
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= walked


def _walk(server: Running) -> list[tuple[str, RouteContext]]:
    """(method, route) of every route; signing out, then in, last: both end the session of
    the cookie sent."""
    last = {("DELETE", "/api/v1/session"): 1, ("POST", "/api/v1/session"): 2}
    pairs = [(m, r) for r in _api_routes(server) for m in sorted(r.methods or ())]
    return sorted(pairs, key=lambda p: last.get((p[0], p[1].path), 0))


@pytest.mark.slow
def test_every_route_answers_every_credential_as_it_declares(world: World) -> None:
    server = world.server
    wrong: list[str] = []
    for cred in _credentials(server):
        for method, route in _walk(server):
            params, body = world.fresh(method, route.path)
            if route.path == "/api/v1/write":  # a remote-write body: snappy protobuf
                r = server.request(method, route.path, headers={**cred.headers, **SNAPPY},
                                   content=EMPTY_WRITE)  # fmt: skip
            else:
                r = server.request(method, route.path.format(**params), headers=cred.headers,
                                   json=body, params=_query(route.path))  # fmt: skip
            problem = _judge(r, cred, declared(route), OPEN_ANSWERS.get((method, route.path)))
            if problem:
                wrong.append(f"{cred.label}: {method} {route.path}: {problem}")
    assert wrong == [], "\n".join(wrong)


def _query(path: str) -> dict[str, str]:
    return PROMETHEUS_QUERY if path.startswith("/prometheus/") else QUERY


def _judge(
    r: httpx.Response, cred: Credential, needs: set[Need], open_answer: int | None = None
) -> str | None:
    expected = cred.expected(needs)
    if expected == 200 and open_answer is not None:
        expected = open_answer
    got = 200 if 200 <= r.status_code < 300 else r.status_code
    if got != expected:
        return f"{r.status_code} (expected {expected}): {r.text[:200]}"
    if cred.secret and cred.secret in r.text:
        return "the answer repeats the credential"
    roles = {n.role.value for n in needs if n.role is not None}
    if expected == 403 and roles and not any(f"{role} role" in r.text for role in roles):
        return f"the 403 does not name the role needed ({roles}): {r.text[:200]}"
    return None


@pytest.mark.slow
def test_undeclarable_routes_are_open(world: World) -> None:
    for path in UNDECLARABLE.values():
        assert world.server.get(path).status_code == 200, path


@pytest.mark.slow
def test_metrics_show_project_series_to_roles_that_read(world: World) -> None:
    by_role = {c.role: c for c in _credentials(world.server) if c.role is not None}
    series = f'project="{PROJECT}"'
    for role, cred in by_role.items():
        body = world.server.get("/metrics", headers=cred.headers).text
        assert (series in body) is role.grants(Role.VIEWER), role
        assert "watchkeeper_ingest" in body  # health series for everyone
    assert series not in world.server.get("/metrics").text
