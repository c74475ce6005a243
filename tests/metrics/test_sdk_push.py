"""`init(metrics="otlp")`: the app's registry pushed to a real server comes back as the
series (names, labels, values) the app serves on /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import watchkeeper
from tests.eventually import eventually
from tests.metrics.conftest import Server


@pytest.fixture
def sdk_off() -> Iterator[None]:
    yield
    watchkeeper.shutdown()


def _served(registry: CollectorRegistry) -> dict[str, float]:
    """What the app's /metrics says, series by series (`_created` left out, as pushed)."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[_key(s.name, s.labels)] = float(s.value)
    return out


def _key(name: str, labels: dict[str, str]) -> str:
    """A series as text; `le` as a number: Python's client writes "1.0", an OTLP bound
    becomes "1" (Go's formatting, as Prometheus's OTLP translation writes it)."""
    shown = sorted(
        (k, repr(float(v)) if k == "le" else v)
        for k, v in labels.items()
        if k not in ("job", "instance", "__name__")
    )
    return name + "{" + ",".join(f"{k}={v}" for k, v in shown) + "}"


def _stored(server: Server) -> dict[str, float]:
    r = server.prom("query", query='{job="shop"}')
    return {
        _key(s["metric"]["__name__"], s["metric"]): float(s["value"][1])
        for s in r.json()["data"]["result"]
    }


def test_the_pushed_registry_is_what_the_app_serves(server: Server, sdk_off: None) -> None:
    registry = CollectorRegistry()
    orders = Counter("orders", "Orders.", ["status"], registry=registry)
    stock = Gauge("stock_items", "Items in stock.", registry=registry)
    latency = Histogram("checkout_seconds", "Checkout.", buckets=(0.1, 1), registry=registry)
    watchkeeper.init(
        "shop", endpoint=server.url, registry=registry, exporter=InMemorySpanExporter(),
        metrics="otlp", metrics_interval_s=0.2, json_logs=False, raise_errors=True,
    )  # fmt: skip
    orders.labels("paid").inc(3)
    orders.labels("failed").inc()
    stock.set(42)
    for v in (0.05, 0.5, 3):
        latency.observe(v)
    served = _served(registry)
    stored = eventually(lambda: _stored(server), 30, 0.2, until=lambda s: s == served)
    assert stored == served
    assert "orders_total{status=paid}" in stored  # the SDK's own series came along too
    assert stored["checkout_seconds_bucket{le=1.0}"] == 2

    stock.set(7)
    watchkeeper.shutdown()  # the last values are pushed on the way out
    server.flush()
    assert _stored(server)["stock_items{}"] == 7
