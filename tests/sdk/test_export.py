"""End to end through the real OTLP/HTTP exporter to a local receiver."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

import watchkeeper

from ._servers import OtlpReceiver, serve_asgi


def test_spans_reach_an_otlp_receiver_with_key_project_and_resource() -> None:
    with OtlpReceiver() as receiver:
        watchkeeper.init(
            "export-svc",
            endpoint=receiver.url,
            api_key="wk_test_key",
            project="proj-a",
            environment="test",
            json_logs=False,
            raise_errors=True,
        )
        try:
            app = FastAPI()

            @app.get("/hello/{who}")
            async def hello(who: str) -> dict[str, str]:
                with watchkeeper.observe("chat", kind="llm") as span:
                    span.set_model("gpt-4o-mini", provider="openai")
                return {"hello": who}

            app.add_middleware(watchkeeper.WatchkeeperMiddleware)  # type: ignore[arg-type]
            with serve_asgi(app) as url:
                assert httpx.get(f"{url}/hello/bob").json() == {"hello": "bob"}
            assert watchkeeper.flush(5.0)
            receiver.wait_for(2)
        finally:
            watchkeeper.shutdown()
        assert sorted(receiver.span_names()) == ["GET /hello/{who}", "chat"]
        headers, request = receiver.requests[0]
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["authorization"] == "Bearer wk_test_key"
        assert lowered["x-watchkeeper-project"] == "proj-a"
        assert lowered["content-type"] == "application/x-protobuf"
        resource = {
            kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes
        }
        assert resource["service.name"] == "export-svc"
        assert resource["deployment.environment.name"] == "test"
        assert resource["watchkeeper.project"] == "proj-a"
