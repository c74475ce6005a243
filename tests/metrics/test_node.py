"""A Node.js app's metrics through the OpenTelemetry JS SDK (`@opentelemetry/sdk-metrics` and
the OTLP/HTTP protobuf exporter from npm) to a real server, read back through PromQL."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.metrics.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("node") / "send_metrics.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _vector(server: Server, query: str) -> dict[str, float]:
    """Series of an instant query (now) → value, keyed by their labels but the name."""
    r = server.prom("query", query=query)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "vector"
    return {
        ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k != "__name__"): float(
            s["value"][1]
        )
        for s in data["result"]
    }


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_a_node_app_s_metrics_are_queryable(server: Server, temporality: str) -> None:
    assert (ROOT / "node_modules/@opentelemetry/sdk-metrics").is_dir(), "run npm ci first"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": temporality}
    sent = subprocess.run(
        ["node", str(SCRIPT), server.url, "3"], capture_output=True, text=True, timeout=120,
        env=env,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    server.flush()
    assert _vector(server, "shop_orders_total") == {
        "job=node-shop,region=eu": 6.0,
        "job=node-shop,region=us": 3.0,
    }
    assert _vector(server, "shop_queue_depth") == {"job=node-shop,queue=mail": 9.0}
    buckets = _vector(server, "shop_checkout_duration_seconds_bucket")
    assert buckets == {
        "job=node-shop,le=0.1,route=/pay": 3.0,
        "job=node-shop,le=1,route=/pay": 6.0,
        "job=node-shop,le=+Inf,route=/pay": 6.0,
    }
    assert _vector(server, "shop_checkout_duration_seconds_count") == {
        "job=node-shop,route=/pay": 6.0
    }
    total = _vector(server, "shop_checkout_duration_seconds_sum")
    assert total.keys() == {"job=node-shop,route=/pay"}
    assert total["job=node-shop,route=/pay"] == pytest.approx(1.65)
    assert _vector(server, "shop_temperature") == {"job=node-shop,room=cold": 23.0}
