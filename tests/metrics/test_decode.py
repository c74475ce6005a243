"""OTLP metrics → Prometheus samples: names, labels and every point type, from requests the
OpenTelemetry SDK itself encodes, and from OTLP/JSON."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from watchkeeper.errors import DecodeError
from watchkeeper.ingest import decode_metrics
from watchkeeper.ingest._metric_names import format_le, label_name, metric_name
from watchkeeper.model import Metadata


@pytest.mark.parametrize(
    ("name", "unit", "kind", "monotonic", "expected"),
    [
        (
            "http.server.request.duration",
            "s",
            "histogram",
            False,
            "http_server_request_duration_seconds",
        ),
        ("system.memory.usage", "By", "sum", False, "system_memory_usage_bytes"),
        ("http.requests", "{request}", "sum", True, "http_requests_total"),
        ("requests_total", "1", "sum", True, "requests_total"),
        ("cpu.utilization", "1", "gauge", False, "cpu_utilization_ratio"),
        ("speed", "m/s", "gauge", False, "speed_meters_per_second"),
        ("latency.seconds", "s", "gauge", False, "latency_seconds"),
        ("disk.io", "MiBy", "sum", True, "disk_io_mebibytes_total"),
        ("2xx.count", "", "gauge", False, "_2xx_count"),
        ("weird--name!!x", "ms", "gauge", False, "weird_name_x_milliseconds"),
    ],
)
def test_metric_names_follow_the_compatibility_spec(
    name: str, unit: str, kind: str, monotonic: bool, expected: str
) -> None:
    assert metric_name(name, unit, kind, monotonic) == expected


def test_label_names_and_bounds() -> None:
    assert label_name("http.route") == "http_route"
    assert label_name("0day") == "key_0day"
    assert label_name("__private") == "__private"
    assert [format_le(b) for b in (0.005, 1.0, 1e6, 2.5e-7, math.inf)] == [
        "0.005", "1", "1000000", "0.00000025", "+Inf"
    ]  # fmt: skip


def _request(temporality: AggregationTemporality, exponential: bool = False) -> bytes:
    """What the OpenTelemetry SDK's OTLP exporter sends for a few instruments."""
    kinds = (Counter, UpDownCounter, Histogram, ObservableGauge)
    reader = InMemoryMetricReader(preferred_temporality=dict.fromkeys(kinds, temporality))
    views = [View(instrument_type=Histogram, aggregation=ExponentialBucketHistogramAggregation())]
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(
            {
                "service.name": "api",
                "service.namespace": "shop",
                "service.instance.id": "i-1",
                "deployment.environment": "prod",
            }
        ),
        views=views if exponential else (),
    )
    meter = provider.get_meter("test")
    requests = meter.create_counter("http.requests", unit="{request}", description="Requests.")
    queue = meter.create_up_down_counter("queue.depth")
    duration = meter.create_histogram(
        "http.server.request.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=[0.005, 0.25, 7.5],
    )
    meter.create_observable_gauge("cpu.utilization", [lambda _o: [Observation(0.25)]], unit="1")
    for route, n in (("/a", 3), ("/b", 1)):
        requests.add(n, {"http.route": route})
    queue.add(5)
    queue.add(-2)
    for v in (0.003, 0.2, 0.2, 7.0):
        duration.record(v, {"http.route": "/a"})
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return bytes(encode_metrics(data).SerializeToString())


def _by_name(decoded: Any) -> dict[str, list[tuple[dict[str, str], float | None, bool]]]:
    out: dict[str, list[tuple[dict[str, str], float | None, bool]]] = {}
    for s in decoded.all_samples():
        labels = dict(s.labels)
        out.setdefault(labels.pop("__name__"), []).append((labels, s.value, s.delta))
    return out


def test_cumulative_request_from_the_sdk() -> None:
    decoded = decode_metrics(_request(AggregationTemporality.CUMULATIVE), "protobuf")
    got = _by_name(decoded)
    base = {"job": "shop/api", "instance": "i-1", "deployment_environment": "prod"}
    (requests_a,) = [s for s in got["http_requests_total"] if s[0]["http_route"] == "/a"]
    assert requests_a[0] == {**base, "http_route": "/a"}  # no telemetry_sdk_* labels
    assert requests_a[1:] == (3.0, False)
    assert [v for _l, v, _d in got["queue_depth"]] == [3.0]
    buckets = {lb["le"]: v for lb, v, _d in got["http_server_request_duration_seconds_bucket"]}
    assert buckets["0.005"] == 1 and buckets["0.25"] == 3 and buckets["7.5"] == 4
    assert buckets["+Inf"] == 4 and list(buckets)[-1] == "+Inf"
    assert got["http_server_request_duration_seconds_count"][0][1] == 4
    assert got["http_server_request_duration_seconds_sum"][0][1] == pytest.approx(7.403)
    assert got["cpu_utilization_ratio"][0][1] == 0.25
    assert decoded.metadata["http_requests_total"] == Metadata("counter", "{request}", "Requests.")
    assert decoded.metadata["queue_depth"].type == "gauge"
    assert decoded.metadata["http_server_request_duration_seconds"].type == "histogram"
    assert decoded.points == 5 and decoded.rejected == 0


def test_delta_sums_and_histograms_are_marked_for_the_store() -> None:
    got = _by_name(decode_metrics(_request(AggregationTemporality.DELTA), "protobuf"))
    assert all(d for _l, _v, d in got["http_requests_total"])
    assert all(d for _l, _v, d in got["http_server_request_duration_seconds_bucket"])
    assert not any(d for _l, _v, d in got["cpu_utilization_ratio"])  # a gauge is a gauge


def test_exponential_histogram_becomes_classic_buckets() -> None:
    got = _by_name(decode_metrics(_request(AggregationTemporality.CUMULATIVE, True), "protobuf"))
    buckets = [
        (float(lb["le"].replace("Inf", "inf")), v)
        for lb, v, _d in got["http_server_request_duration_seconds_bucket"]
    ]
    bounds = [b for b, _v in buckets]
    counts = [v for _b, v in buckets]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf
    assert counts == sorted(counts) and counts[-1] == 4  # cumulative
    # each value lies at or below the first bound whose count includes it
    for value, rank in ((0.003, 1), (0.2, 3), (7.0, 4)):
        first = next(b for b, c in buckets if c >= rank)
        assert value <= first < value * 1.1  # the SDK's scale keeps bounds within 10%


def test_otlp_json_with_hex_exemplar_ids_stale_points_and_bad_points() -> None:
    exemplar = {"traceId": "0af7651916cd43dd8448eb211c80319c", "asDouble": 1}
    point = {"timeUnixNano": "1700000000000000000", "asDouble": 1.5, "exemplars": [exemplar]}
    doc = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "w"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "temp",
                                "unit": "Cel",
                                "gauge": {
                                    "dataPoints": [
                                        point,
                                        {"timeUnixNano": "1700000001000000000", "flags": 1},
                                        {"asDouble": 2},
                                    ]
                                },
                            },
                            {
                                "name": "rpc",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "1700000000000000000",
                                            "count": "4",
                                            "sum": 2,
                                            "quantileValues": [{"quantile": 0.5, "value": 0.4}],
                                        },
                                    ]
                                },
                            },
                        ]
                    }
                ],
            }
        ]
    }
    decoded = decode_metrics(orjson.dumps(doc), "json")
    got = _by_name(decoded)
    assert [(v, lb["job"]) for lb, v, _d in got["temp_celsius"]] == [(1.5, "w"), (None, "w")]
    assert decoded.all_samples()[0].t_ms == 1_700_000_000_000
    assert got["rpc"] == [({"job": "w", "quantile": "0.5"}, 0.4, False)]
    assert got["rpc_count"][0][1] == 4 and got["rpc_sum"][0][1] == 2
    assert (decoded.points, decoded.rejected) == (3, 1)
    assert "no time_unix_nano" in decoded.error_message


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"\xff\xff\xff", "protobuf", "not an OTLP ExportMetricsServiceRequest"),
        (b"{not json", "json", "not valid JSON"),
        (b"[]", "json", "not an OTLP/JSON"),
        (b'{"resourceMetrics": 5}', "json", "not an OTLP/JSON"),
    ],
)
def test_undecodable_bodies(body: bytes, encoding: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_metrics(body, encoding)
