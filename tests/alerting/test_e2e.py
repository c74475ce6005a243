"""End to end: a real server process, spans through the real OTLP exporter, a real receiver.

30% timeouts for one service fire a notification at the webhook within 10 s; healthy spans
resolve it. A channel that is down gets the notification once it is back, across a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.alerting._receiver import Receiver
from tests.eventually import eventually
from tests.server._process import ServerProcess, free_port
from watchkeeper.model.conventions import WK_OUTCOME

SERVICE = "e2e-chat"


def make_spans(n: int, timeouts: int, service: str = SERVICE) -> list[ReadableSpan]:
    """`n` root spans of `service`, the first `timeouts` of them timed out."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("e2e")
    for i in range(n):
        with tracer.start_as_current_span("POST /chat") as span:
            if i < timeouts:
                span.set_attribute(WK_OUTCOME, "timeout")
                span.set_attribute("error.type", "TimeoutError")
                span.set_status(StatusCode.ERROR, "deadline exceeded")
    return list(memory.get_finished_spans())


def send(url: str, spans: list[ReadableSpan]) -> None:
    """Export through the real OTLP/HTTP exporter; fail unless the server acknowledged."""
    result = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=10).export(spans)
    assert result is SpanExportResult.SUCCESS


def write_config(path: Path, hook_url: str) -> Path:
    rule = {
        "id": "e2e-timeouts",
        "name": "E2E timeout rate",
        "kind": "outcome_ratio",
        "outcomes": ["timeout"],
        "filters": {"service": SERVICE, "scope": "requests"},
        "group_by": "service",
        "window": "5s",
        "threshold": "10%",
        "severity": "critical",
        "annotations": {"summary": "{service}: {value} of requests timed out"},
    }
    alerting = {
        "interval": 1,
        "starter_rules": False,
        "retry_base": 0.5,
        "retry_max": 1,
        "rules": [rule],
        "channels": [{"type": "webhook", "name": "hook", "url": hook_url}],
    }
    path.write_text(yaml.safe_dump({"alerting": alerting}))
    return path


def wait_for(receiver: Receiver, pred: Any, timeout: float) -> list[dict[str, Any]]:
    return eventually(lambda: [b for b in list(receiver.received) if pred(b)], timeout, 0.05)


@pytest.mark.slow
def test_timeouts_fire_then_healthy_spans_resolve(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path / "wk.yaml", receiver.url)
    server = ServerProcess(tmp_path / "data", None, "--config", str(config)).start()
    try:
        send(server.url, make_spans(100, timeouts=30))
        firing = wait_for(receiver, lambda b: b["status"] == "firing", timeout=10)
        assert firing, f"no firing notification within 10 s: {server.output()[-2000:]}"
        body = firing[0]
        assert body["rule_id"] == "e2e-timeouts" and body["labels"]["service"] == SERVICE
        assert body["summary"] == f"{SERVICE}: 30% of requests timed out"
        assert len(body["traces"]) == 5

        # Healthy traffic: once the timeouts leave the 5 s window the alert resolves.
        def resolved_after_healthy_traffic() -> list[dict[str, Any]]:
            send(server.url, make_spans(20, timeouts=0))
            return wait_for(receiver, lambda b: b["status"] == "resolved", timeout=1)

        resolved = eventually(resolved_after_healthy_traffic, 20, 0)
        assert resolved, server.output()[-2000:]
        assert resolved[0]["fingerprint"] == body["fingerprint"]
    finally:
        server.stop()


@pytest.mark.slow
def test_channel_down_delivers_after_it_returns_across_restart(tmp_path: Path) -> None:
    port = free_port()  # nobody listens here yet: the channel is down
    config = write_config(tmp_path / "wk.yaml", f"http://127.0.0.1:{port}/hook")
    data = tmp_path / "data"
    server = ServerProcess(data, None, "--config", str(config)).start()
    try:
        send(server.url, make_spans(50, timeouts=25))
        log: list[dict[str, Any]] = eventually(
            lambda: server_get(server.url, "/api/v1/notifications", {"limit": 10})["items"],
            15,
            0.2,
            until=lambda log: bool(log) and log[-1]["attempts"] >= 1,
        )
        assert log and log[-1]["state"] == "pending", log
        assert log[-1]["attempt_log"][0]["result"] == "retry"
        fired_before_restart = log[-1]["notification"]["started_at"]
    finally:
        server.stop()

    receiver = Receiver(port).start()
    server = ServerProcess(data, None, "--config", str(config)).start()
    try:
        firing = wait_for(receiver, lambda b: b["status"] == "firing", timeout=15)
        assert firing, server.output()[-2000:]
        assert firing[0]["rule_id"] == "e2e-timeouts"
        assert firing[0]["started_at"] is not None
        assert abs(_unix(firing[0]["started_at"]) * 1000 - fired_before_restart) < 10  # ms
    finally:
        server.stop()
        receiver.close()


def server_get(url: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    import httpx

    data: dict[str, Any] = httpx.get(url + path, params=params, timeout=10).json()
    return data


def _unix(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_report_cli_asks_the_running_server(tmp_path: Path, capsys: Any) -> None:
    from watchkeeper.cli._report import report_main

    slo = {"id": "e2e-avail", "name": "E2E availability", "objective": "99%"}
    config = tmp_path / "wk.yaml"
    config.write_text(yaml.safe_dump({"alerting": {"starter_rules": False, "slos": [slo]}}))
    server = ServerProcess(tmp_path / "data", None, "--config", str(config)).start()
    try:
        send(server.url, make_spans(40, timeouts=4))

        def report() -> str:
            assert report_main(["--url", server.url, "--format", "text"]) == 0
            return str(capsys.readouterr().out)

        out = eventually(report, 15, 0.2, until=lambda out: "Requests     40" in out)
        assert "Requests     40" in out and "Timeouts     4 (10.00%)" in out
        assert "E2E availability: SLI 90.00% (objective 99.00%), budget left -900.00%" in out
        # The store file is locked by the server: the direct mode says what to do instead.
        assert report_main(["--data-dir", str(tmp_path / "data")]) == 1
        assert "--url" in capsys.readouterr().err
    finally:
        server.stop()
