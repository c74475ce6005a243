"""Every error path of the API (unknown route, wrong method, a body FastAPI refuses, an
unknown thing) answers `{"error": "..."}` as docs/api.md promises, from a real server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.server._process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("numbers") / "data").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


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
