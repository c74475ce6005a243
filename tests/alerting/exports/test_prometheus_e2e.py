"""Real Prometheus scrapes the server's span metrics, loads the exported rules, fires them."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server

from tests.alerting.exports._inputs import ALL_RULES, AVAILABILITY, LATENCY
from tests.alerting.exports.conftest import tool
from tests.eventually import eventually
from watchkeeper.cli._export import prometheus_rules_files
from watchkeeper.model import SpanBatch, SpanRow
from watchkeeper.server._span_metrics import SpanMetrics

LIMIT_S = 90.0


class App:
    """The server's own span-derived metrics on /metrics, fed spans that breach every rule."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = SpanMetrics(self.registry)
        self.stop = threading.Event()
        self.server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self._drive, daemon=True)

    def _drive(self) -> None:
        # Half the model calls fail, each takes 9 s and costs 0.5 USD.
        n = 0
        while not self.stop.wait(0.05):
            spans = [self._span(n := n + 1, outcome) for outcome in ("success", "error")]
            self.metrics.observe(SpanBatch(spans=spans))

    @staticmethod
    def _span(n: int, outcome: str) -> SpanRow:
        return SpanRow(
            project="default",
            trace_id=f"{n:032x}",
            span_id=f"{n:016x}",
            parent_span_id="",
            name="chat gpt-4o",
            start_ns=n,
            duration_ns=9_000_000_000,
            service="chat",
            operation="llm",
            outcome=outcome,
            request_model="gpt-4o",
            cost_usd=0.5,
            input_tokens=100,
            output_tokens=50,
        )

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, App]]:
    binary = tool("prometheus")
    app = App()
    app.thread.start()
    files, _ = prometheus_rules_files(ALL_RULES, [AVAILABILITY, LATENCY], interval_s=1, for_s=0)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [{", ".join(files)}]
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["127.0.0.1:{app.port}"]
"""
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        proc.terminate()
        proc.wait(20)
        app.close()


def _get(url: str) -> Any:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json()["data"] if response.status_code == 200 else None


def _firing(base: str) -> dict[str, list[dict[str, Any]]]:
    data = _get(f"{base}/api/v1/alerts") or {"alerts": []}
    out: dict[str, list[dict[str, Any]]] = {}
    for alert in data["alerts"]:
        if alert["state"] == "firing":
            out.setdefault(alert["labels"]["alertname"], []).append(alert)
    return out


@pytest.mark.slow
def test_exported_rules_fire_in_a_real_prometheus(prometheus: tuple[str, App]) -> None:
    base, _ = prometheus
    wanted = {
        "Error spike",
        "Spend above 1 USD per minute",
        "ChatAvailabilityErrorBudgetBurn",
        "Slow",
    }
    firing = eventually(lambda: _firing(base), LIMIT_S, 0.5, until=lambda f: wanted <= set(f))
    assert wanted <= set(firing), f"still not firing: {wanted - set(firing)}"
    (spike,) = firing["Error spike"]
    assert spike["labels"]["service"] == "chat"
    assert spike["labels"]["severity"] == "warning"
    assert spike["annotations"]["summary"] == "chat: 50% of requests failed over 5m"
    (spend,) = firing["Spend above 1 USD per minute"]
    assert spend["labels"]["model"] == "gpt-4o" and spend["labels"]["severity"] == "critical"
    pages = [
        a
        for a in firing["ChatAvailabilityErrorBudgetBurn"]
        if a["labels"]["severity"] == "critical"
    ]
    assert pages and "sloth_window" not in pages[0]["labels"]
    # Every exported rule, recording or alerting, evaluates without error.
    groups = _get(f"{base}/api/v1/rules")["groups"]
    broken = [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"
    ]
    assert broken == []
    assert sum(len(g["rules"]) for g in groups) == len(ALL_RULES) + 34
