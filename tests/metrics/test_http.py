"""`POST /v1/metrics` end to end on a real server: the OpenTelemetry SDK's own exporter,
OTLP/JSON with gzip, the OTLP error answers, project keys, and a replay of the spool."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from tests.metrics.conftest import Server
from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server._roles import Role
from watchkeeper.server.app import build_services, create_app


def _vector(server: Server, query: str, token: str | None = None) -> dict[str, float]:
    r = server.prom("query", token, query=query)  # now: the SDK stamps its points now
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "vector"
    return {_key(s["metric"]): float(s["value"][1]) for s in data["result"]}


def _key(metric: dict[str, str]) -> str:
    """A series' labels as one string, without the SDK's random `instance`."""
    shown = sorted((k, v) for k, v in metric.items() if k not in ("__name__", "instance"))
    return ",".join(f"{k}={v}" for k, v in shown)


def _export(url: str, temporality: AggregationTemporality, rounds: int, **headers: str) -> None:
    """Count and time requests with the SDK, exporting `rounds` times over OTLP/HTTP."""
    kinds = {Counter: temporality, Histogram: temporality}
    exporter = OTLPMetricExporter(
        endpoint=f"{url}/v1/metrics", headers=headers, preferred_temporality=kinds
    )
    results: list[MetricExportResult] = []
    original = exporter.export

    def export(*args: Any, **kwargs: Any) -> MetricExportResult:
        results.append(original(*args, **kwargs))
        return results[-1]

    exporter.export = export  # type: ignore[method-assign]
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "shop"})
    )
    meter = provider.get_meter("test")
    requests = meter.create_counter("http.requests")
    duration = meter.create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    for _ in range(rounds):
        requests.add(2, {"route": "/a"})
        duration.record(0.5)
        assert reader.force_flush(10_000)
    provider.shutdown()
    assert results and all(r == MetricExportResult.SUCCESS for r in results)


@pytest.mark.parametrize(
    "temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]
)
def test_the_sdk_exporter_counts_end_up_queryable(
    server: Server, temporality: AggregationTemporality
) -> None:
    _export(server.url, temporality, rounds=3)
    server.flush()
    # delta or cumulative, the store holds the running total
    assert _vector(server, "http_requests_total") == {"job=shop,route=/a": 6.0}
    assert _vector(server, "http_server_request_duration_seconds_count") == {"job=shop": 3.0}
    assert _vector(server, 'http_server_request_duration_seconds_bucket{le="1"}') == {
        "job=shop,le=1": 3.0
    }
    meta = server.prom("metadata").json()["data"]
    assert meta["http_requests_total"] == [{"type": "counter", "help": "", "unit": ""}]
    assert server.metric("watchkeeper_metrics_samples_written_total") > 0


def _json_body(points: list[dict[str, Any]]) -> bytes:
    metric = {"name": "temperature", "gauge": {"dataPoints": points}}
    doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}
    return orjson.dumps(doc)


def test_json_gzip_partial_success_and_error_answers(make_server: Callable[..., Server]) -> None:
    server = make_server(auth={"required": False}, ingest={"max_body_bytes": 4096})
    url = f"{server.url}/v1/metrics"
    good = {"timeUnixNano": "1700000000000000000", "asDouble": 21.5}
    body = gzip.compress(_json_body([good, {"asDouble": 3}]))
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = httpx.post(url, content=body, headers=headers)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1" and "time_unix_nano" in partial["errorMessage"]
    server.flush()
    r = server.prom("query", query="temperature", time="1700000010")
    assert r.json()["data"]["result"][0]["value"] == [1700000010, "21.5"]

    bad = httpx.post(url, content=b"\x0a\xff", headers={"Content-Type": "application/x-protobuf"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/x-protobuf"
    wrong = httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 415
    large = httpx.post(url, content=b" " * 10_000, headers={"Content-Type": "application/json"})
    assert large.status_code == 413
    not_json = httpx.post(url, content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]


def test_project_keys_write_and_read_their_own_project(make_server: Callable[..., Server]) -> None:
    server = make_server(auth={"required": True})
    keys = server.services.keys
    _, alpha_ingest = keys.create("alpha", role=Role.INGEST)
    _, alpha_viewer = keys.create("alpha", role=Role.VIEWER)
    _, beta_viewer = keys.create("beta", role=Role.VIEWER)
    body = _json_body([{"timeUnixNano": "1700000000000000000", "asDouble": 1}])
    headers = {"Content-Type": "application/json"}
    assert httpx.post(f"{server.url}/v1/metrics", content=body, headers=headers).status_code == 401
    as_viewer = {**headers, "Authorization": f"Bearer {alpha_viewer}"}
    assert (
        httpx.post(f"{server.url}/v1/metrics", content=body, headers=as_viewer).status_code == 403
    )
    as_ingest = {**headers, "Authorization": f"Bearer {alpha_ingest}"}
    assert (
        httpx.post(f"{server.url}/v1/metrics", content=body, headers=as_ingest).status_code == 200
    )
    server.flush()
    query = {"query": "temperature", "time": "1700000010"}
    assert len(server.prom("query", alpha_viewer, **query).json()["data"]["result"]) == 1
    assert server.prom("query", beta_viewer, **query).json()["data"]["result"] == []
    assert server.prom("series", beta_viewer, **{"match[]": "temperature"}).json()["data"] == []
    assert server.prom("query", None, **query).status_code == 401


def test_a_replayed_spool_stores_nothing_twice(tmp_path: Path) -> None:
    overrides = {"server": {"data_dir": str(tmp_path / "data"), "port": 0},
                 "auth": {"required": False}}  # fmt: skip
    config = load_config(env={}, overrides=overrides)
    points = [{"timeUnixNano": f"17000000{i:02d}000000000", "asDouble": i} for i in range(10)]
    svc = build_services(config)
    with serve_in_thread(create_app(config, services=svc)) as url:
        headers = {"Content-Type": "application/json"}
        assert httpx.post(
            f"{url}/v1/metrics", content=_json_body(points), headers=headers
        ).is_success
        assert svc.metrics_ingest.flush(30)
    # As if the server died after the store wrote and before the checkpoint moved.
    (tmp_path / "data" / "spool-metrics" / "checkpoint").unlink()
    svc = build_services(config)
    with serve_in_thread(create_app(config, services=svc)) as url:
        assert svc.metrics_ingest.flush(30)
        server = Server(url, svc)
        r = server.prom("query_range", query="temperature", start="1700000000", end="1700000009",
                        step="1")  # fmt: skip
        values = r.json()["data"]["result"][0]["values"]
        assert [v for _t, v in values] == [str(i) for i in range(10)]
        assert (
            server.metric("watchkeeper_metrics_samples_dropped_total", {"reason": "duplicate"}) == 1
        )
        assert (
            server.metric("watchkeeper_metrics_samples_dropped_total", {"reason": "out_of_order"})
            == 9
        )
