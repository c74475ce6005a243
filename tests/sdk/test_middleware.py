"""The ASGI middleware on a real FastAPI app served by uvicorn, driven over HTTP by httpx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse

import watchkeeper
from watchkeeper.model import conventions as c

from ._servers import serve_asgi
from .conftest import Sdk

DEADLINE = 0.5


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        with watchkeeper.observe("load", kind="retrieval"):
            watchkeeper.count_cache("items", hit=item_id % 2 == 0)
        return {"id": item_id}

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(10)
        return {"never": "sent"}

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("handler bug")

    @app.get("/missing")
    async def missing() -> dict[str, str]:
        raise HTTPException(404, "nope")

    @app.get("/degraded")
    async def degraded() -> dict[str, str]:
        @watchkeeper.guard("llm", deadline=0.1, breaker=False, fallbacks=["cached"])
        async def llm() -> str:
            await asyncio.sleep(5)
            return "fresh"

        return {"answer": await llm()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Iterator[bytes]:  # type: ignore[misc]
            for i in range(3):
                yield f"chunk {i}\n".encode()

        return StreamingResponse(chunks())

    app.add_middleware(WatchkeeperMiddlewareFactory)
    return app


def WatchkeeperMiddlewareFactory(app: object) -> watchkeeper.WatchkeeperMiddleware:
    return watchkeeper.WatchkeeperMiddleware(app, deadline=DEADLINE)  # type: ignore[arg-type]


@pytest.fixture
def base_url(sdk: Sdk) -> Iterator[str]:
    with serve_asgi(build_app()) as url:
        yield url


def server_span(sdk: Sdk, name: str) -> dict[str, object]:
    watchkeeper.flush()
    return dict(sdk.span(name).attributes or {})


def test_server_span_has_http_semconv_and_the_route(sdk: Sdk, base_url: str) -> None:
    response = httpx.get(f"{base_url}/items/42", headers={"user-agent": "test-agent"})
    assert response.json() == {"id": 42}
    trace_id = format(sdk.span("GET /items/{item_id}").context.trace_id, "032x")
    assert response.headers["x-trace-id"] == trace_id
    attrs = server_span(sdk, "GET /items/{item_id}")
    assert attrs[c.HTTP_REQUEST_METHOD] == "GET"
    assert attrs[c.HTTP_ROUTE] == "/items/{item_id}"
    assert attrs[c.URL_PATH] == "/items/42"
    assert attrs[c.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[c.WK_OUTCOME] == "success"
    assert attrs[c.WK_OPERATION] == "http"
    load = sdk.span("load")
    assert load.parent is not None
    assert load.parent.span_id == sdk.span("GET /items/{item_id}").context.span_id
    assert [e.name for e in load.events] == ["cache"]
    assert sdk.metric("watchkeeper_cache_requests_total", {"name": "items", "result": "hit"}) == 1
    assert (
        sdk.metric("watchkeeper_cache_requests_total", {"name": "items", "result": "miss"}) is None
    )


def test_w3c_traceparent_is_continued(sdk: Sdk, base_url: str) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = "00f067aa0ba902b7"
    httpx.get(f"{base_url}/items/1", headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    watchkeeper.flush()
    span = sdk.span("GET /items/{item_id}")
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == parent


@pytest.mark.parametrize(
    ("path", "status", "outcome", "name"),
    [
        ("/slow", 504, "timeout", "GET /slow"),
        ("/boom", 500, "error", "GET /boom"),
        ("/missing", 404, "success", "GET /missing"),
        ("/degraded", 200, "fallback", "GET /degraded"),
        ("/stream", 200, "success", "GET /stream"),
        ("/no-such-route", 404, "success", "GET"),
    ],
)
@pytest.mark.slow
def test_status_and_outcome(
    sdk: Sdk, base_url: str, path: str, status: int, outcome: str, name: str
) -> None:
    response = httpx.get(f"{base_url}{path}", timeout=10)
    assert response.status_code == status
    attrs = server_span(sdk, name)
    assert attrs[c.HTTP_RESPONSE_STATUS_CODE] == status
    assert attrs[c.WK_OUTCOME] == outcome


@pytest.mark.slow
def test_deadline_answers_504_in_time(sdk: Sdk, base_url: str) -> None:
    response = httpx.get(f"{base_url}/slow", timeout=10)
    assert response.status_code == 504
    assert "deadline" in response.json()["error"]
    assert len(response.headers["x-trace-id"]) == 32
    assert response.elapsed.total_seconds() < DEADLINE + 2.0


@pytest.mark.slow
def test_metrics_route_serves_red_metrics_and_is_not_traced(sdk: Sdk, base_url: str) -> None:
    for i in range(3):
        httpx.get(f"{base_url}/items/{i}")
    httpx.get(f"{base_url}/slow", timeout=10)
    sdk.wait_count("GET /items/{item_id}", 3)
    sdk.wait_count("GET /slow", 1)
    text = httpx.get(f"{base_url}/metrics").text
    watchkeeper.flush()
    assert not [n for n in sdk.names() if "metrics" in n]
    assert "http_server_request_duration_seconds_bucket" in text
    labels = {
        "http_request_method": "GET",
        "http_route": "/items/{item_id}",
        "http_response_status_code": "200",
    }
    assert sdk.metric("http_server_request_duration_seconds_count", labels) == 3
    slow = {"http_request_method": "GET", "http_route": "/slow", "http_response_status_code": "504"}
    deadline_bucket = {**slow, "le": "0.5"}  # the deadline is a bucket of this series
    assert sdk.metric("http_server_request_duration_seconds_bucket", deadline_bucket) is not None
    assert sdk.metric("http_server_request_duration_seconds_bucket", {**slow, "le": "+Inf"}) == 1
    assert sdk.metric("http_server_active_requests", {"http_request_method": "GET"}) == 0
    assert 'le="0.5"' in text  # the deadline is a bucket boundary


def test_metrics_app_can_be_mounted_on_its_own(sdk: Sdk) -> None:
    with watchkeeper.observe("chat", kind="llm") as span:
        span.set_model("m", provider="p")
    with serve_asgi(watchkeeper.metrics_app(sdk.registry)) as url:
        text = httpx.get(url + "/").text
    assert "gen_ai_client_operation_duration_seconds_bucket" in text


@pytest.mark.slow
def test_before_init_the_deadline_still_holds() -> None:
    watchkeeper.shutdown()
    with serve_asgi(build_app()) as url:
        assert httpx.get(f"{url}/items/3").json() == {"id": 3}
        assert httpx.get(f"{url}/slow", timeout=10).status_code == 504
        assert httpx.get(f"{url}/metrics").status_code == 200


def test_routes_of_mounted_apps_keep_their_prefix(sdk: Sdk) -> None:
    sub = FastAPI()

    @sub.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"thing": thing_id}

    app = FastAPI()
    app.mount("/v2", sub)
    app.add_middleware(watchkeeper.WatchkeeperMiddleware)  # type: ignore[arg-type]
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/v2/things/3").json() == {"thing": 3}
    attrs = server_span(sdk, "GET /v2/things/{thing_id}")
    assert attrs[c.HTTP_ROUTE] == "/v2/things/{thing_id}"


def test_excluded_paths_are_served_but_not_traced(sdk: Sdk) -> None:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"done": "yes"}

    app.add_middleware(watchkeeper.WatchkeeperMiddleware, exclude_paths=["/healthz"])  # type: ignore[arg-type]
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/healthz").json() == {"ok": "yes"}
        assert httpx.get(f"{url}/work").json() == {"done": "yes"}
    sdk.span("GET /work")
    assert sdk.names() == ["GET /work"]
