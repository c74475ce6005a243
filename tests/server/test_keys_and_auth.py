"""Project keys end to end: the CLI creates them, ingest and API check them, projects stay apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.eventually import eventually
from tests.server._process import ServerProcess


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchkeeper", *args], capture_output=True, text=True, timeout=60
    )


def _create_key(data_dir: Path, project: str) -> str:
    done = _cli(
        "keys", "create", "--project", project, "--role", "editor", "--data-dir", str(data_dir)
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _spans(service: str, n: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        with provider.get_tracer("t").start_as_current_span(f"op-{i}"):
            pass
    return list(memory.get_finished_spans())


def _export(url: str, key: str | None, spans: list[ReadableSpan]) -> SpanExportResult:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, timeout=5).export(spans)


def _count(url: str, key: str, service: str | None = None, timeout_s: float = 30.0) -> int:
    params = {"range": "1h", **({"service": service} if service else {})}
    headers = {"Authorization": f"Bearer {key}"}

    def count() -> int:
        r = httpx.get(f"{url}/api/v1/summary", params=params, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return int(r.json()["count"])

    return eventually(count, timeout_s, 0.2)


@pytest.mark.slow
def test_keys_separate_projects_and_reject_strangers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key_a, key_b = _create_key(data, "alpha"), _create_key(data, "beta")
    listed = _cli("keys", "list", "--data-dir", str(data)).stdout
    assert "alpha" in listed and "beta" in listed and key_a not in listed
    assert all("\teditor\t" in line for line in listed.splitlines())
    server = ServerProcess(data).start()
    try:
        assert _export(server.url, key_a, _spans("svc-a", 7)) is SpanExportResult.SUCCESS
        assert _export(server.url, "wk_wrong", _spans("svc-x", 1)) is SpanExportResult.FAILURE
        assert _export(server.url, None, _spans("svc-x", 1)) is SpanExportResult.FAILURE
        r = httpx.post(
            f"{server.url}/v1/traces", content=b"", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 401 and "API key" in r.text
        assert httpx.get(f"{server.url}/api/v1/summary").status_code == 401
        assert _count(server.url, key_a, "svc-a") == 7
        # beta's key sees nothing of alpha, even when it asks for alpha's project by name.
        r = httpx.get(
            f"{server.url}/api/v1/summary",
            params={"range": "1h", "project": "alpha"},
            headers={"Authorization": f"Bearer {key_b}", "X-Watchkeeper-Project": "alpha"},
        )
        assert r.json()["count"] == 0
    finally:
        server.stop()


@pytest.mark.slow
def test_without_keys_listens_on_loopback_only_and_says_so(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", None, "--host", "0.0.0.0").start()
    try:
        assert server.proc is not None
        addresses = {c.laddr.ip for c in psutil.Process(server.proc.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}  # fmt: skip
        assert addresses == {"127.0.0.1"}
        assert "listening on 127.0.0.1 only" in server.output()
    finally:
        server.stop()


@pytest.mark.slow
def test_bad_data_dir_and_config_fail_with_a_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = _cli("serve", "--data-dir", str(blocker / "sub"))
    assert done.returncode == 2 and "data directory" in done.stderr and "--data-dir" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: http\n")
    done = _cli("serve", "--config", str(bad))
    assert done.returncode == 2 and "server.port" in done.stderr


@pytest.mark.slow
def test_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        done = _cli("serve", "--data-dir", str(tmp_path / "data"), "--port", "0")
        assert done.returncode == 2 and "in use by another watchkeeper process" in done.stderr
    finally:
        server.stop()
