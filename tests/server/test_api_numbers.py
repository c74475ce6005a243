"""Every numeric query parameter the OpenAPI document lists, driven with hostile numbers
against a real `watchkeeper serve`: no 5xx, and a 400 `{"error": ...}` that names the
parameter and its range wherever the value is outside what the document says.

Also: every error path (unknown route, wrong method, a body FastAPI refuses) answers
`{"error": "..."}` as docs/api.md promises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server._process import ServerProcess

HOSTILE = ["1e300", "-1e300", "1e309", "nan", "inf", "-inf", "9" * 40, "-1", "0", "1e3"]
PATH_VALUES = {"trace_id": "0" * 32}
#: What a route needs besides the parameter under test to be a valid request.
NEEDS = {"/api/v1/breakdown": {"by": "model"}, "/api/v1/breakdowns": {"by": "model"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # ~700 requests as fast as they go from one address: past the API's rate limit.
    env = {"WATCHKEEPER_LIMITS__ADDRESS_RATE": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("numbers") / "data", env=env).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _numeric(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer/number branches of a parameter's schema (array items included)."""
    if "anyOf" in schema:
        return [b for s in schema["anyOf"] for b in _numeric(s)]
    if schema.get("type") == "array":
        return _numeric(schema["items"])
    return [schema] if schema.get("type") in ("integer", "number") else []


def _allowed(branch: dict[str, Any], text: str) -> bool:
    """Whether the document says `text` is a valid value of this branch."""
    if branch["type"] == "integer":
        if not re.fullmatch(r"-?[0-9]+", text):
            return False
        value: float = int(text)
    else:
        value = float(text)
        if not math.isfinite(value):
            return False
    return bool(branch["minimum"] <= value <= branch["maximum"])


def _numeric_parameters(spec: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for p in op.get("parameters", []):
                branches = _numeric(p["schema"]) if p["in"] == "query" else []
                if branches:
                    assert method == "get", (method, path, p["name"])
                    found.append((path.format(**PATH_VALUES), p["name"], branches))
    return found


@pytest.mark.slow
def test_numeric_parameters_are_typed_with_their_range(client: httpx.Client) -> None:
    params = _numeric_parameters(client.get("/openapi.json").json())
    by_route: dict[str, set[str]] = {}
    for path, name, branches in params:
        by_route.setdefault(path, set()).add(name)
        assert all("minimum" in b and "maximum" in b for b in branches), (path, name)
    common = {"start", "end", "min_duration_ms", "max_duration_ms"}
    assert by_route["/api/v1/spans"] == common | {"limit"}
    assert by_route["/api/v1/summary"] == common | {"last_n"}
    assert by_route["/api/v1/timeseries"] == common | {"step_ms", "limit"}
    assert by_route["/api/v1/heatmap"] == common | {"step_ms", "bounds"}
    assert by_route[f"/api/v1/traces/{PATH_VALUES['trace_id']}"] == {"limit"}
    assert by_route["/api/v1/alerts/history"] == {"limit"}
    assert by_route["/api/v1/notifications"] == {"limit"}


@pytest.mark.slow
def test_every_numeric_parameter_refuses_what_it_cannot_take(client: httpx.Client) -> None:
    params = _numeric_parameters(client.get("/openapi.json").json())
    assert len(params) > 60  # every span query route, with its common parameters
    for path, name, branches in params:
        for text in HOSTILE:
            r = client.get(path, params={**NEEDS.get(path, {}), name: text})
            what = f"GET {path}?{name}={text} -> {r.status_code} {r.text[:300]}"
            assert r.status_code < 500, what
            if any(_allowed(b, text) for b in branches):
                assert r.status_code in (200, 404), what  # 404: no such trace
                continue
            assert r.status_code == 400, what
            body = r.json()
            assert list(body) == ["error"] and name in body["error"], what
            for b in branches:  # the range, as the document states it
                assert f"{b['minimum']} " in body["error"], what
                assert f" {b['maximum']}" in body["error"], what
            assert len(body["error"]) < 400, what


@pytest.mark.parametrize(
    ("path", "name", "text"),
    [
        ("/api/v1/spans", "start", "9999-12-31"),  # a date after the int64 nanosecond limit
        ("/api/v1/summary", "end", "0001-01-01T00:00:00+01:00"),
        ("/api/v1/timeseries", "start", "1e999999999"),
        ("/api/v1/spans", "limit", "1" * 5000),  # past Python's int() digit limit
        ("/api/v1/heatmap", "bounds", "5,1e300"),
    ],
)
def test_times_and_numbers_past_the_limits(
    client: httpx.Client, path: str, name: str, text: str
) -> None:
    r = client.get(path, params={name: text})
    assert r.status_code == 400, r.text
    assert name in r.json()["error"] and len(r.json()["error"]) < 400


def test_every_error_is_an_error_object(client: httpx.Client) -> None:
    def error(r: httpx.Response, status: int) -> str:
        assert r.status_code == status, r.text
        body = r.json()
        assert list(body) == ["error"] and isinstance(body["error"], str), body
        return str(body["error"])

    assert "/api/v1/nothing" in error(client.get("/api/v1/nothing"), 404)
    assert "/nothing" in error(client.get("/nothing"), 404)
    assert "0" * 32 in error(client.get(f"/api/v1/traces/{'0' * 32}"), 404)
    r = client.delete("/api/v1/summary")
    assert "DELETE" in error(r, 405) and r.headers["allow"] == "GET"
    not_an_object = client.post("/api/v1/rules", json=[1, 2])
    assert error(not_an_object, 400).startswith("body: ")
    assert "state" in error(client.get("/api/v1/alerts", params={"state": "on"}), 400)
