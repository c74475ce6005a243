"""Issue 15, first run: the README's snippet (with its `api_key="wk_..."`) reaches the server
that `scripts/run.sh` starts, and a refused export is visible on the server side."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.eventually import eventually
from tests.server._process import ServerProcess
from watchkeeper.demo.fake_providers import fake_openai

README = Path(__file__).resolve().parents[2] / "README.md"


def _fingerprint(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _snippet() -> str:
    """The README's "Instrument an app" Python block, as written."""
    section = README.read_text().split("## Instrument an app", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "the README has no Python snippet under 'Instrument an app'"
    return block.group(1)


def _warnings(server: ServerProcess) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in server.output().splitlines() if x.startswith("{")]
    return [x for x in lines if x["level"] == "WARNING"]


def _count(url: str, service: str, headers: dict[str, str] | None = None) -> int:
    def count() -> int:
        params = {"range": "1h", "service": service}
        r = httpx.get(f"{url}/api/v1/summary", params=params, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return int(r.json()["count"])

    return eventually(count, 30, 0.2)


@pytest.fixture
def keyless(tmp_path: Path) -> Iterator[ServerProcess]:
    """`watchkeeper serve` as `scripts/run.sh` starts it: no keys, loopback."""
    server = ServerProcess(tmp_path / "data").start()
    yield server
    server.stop()


def _run_snippet(server: ServerProcess) -> None:
    """The README's snippet as written, in its own interpreter, against `server`."""
    code = _snippet()
    assert 'api_key="wk_..."' in code and '"http://127.0.0.1:4318"' in code
    # Only the port differs from the README (the test's server is on a free one); `search`
    # is the app's own function, and OpenAI is the demo's fake provider.
    program = "def search(q):\n    return []\n\n" + code.replace(
        '"http://127.0.0.1:4318"', repr(server.url)
    )
    program += "\nwatchkeeper.shutdown()\n"
    with fake_openai() as oai:
        env = {**os.environ, "OPENAI_BASE_URL": oai.url + "/v1", "OPENAI_API_KEY": "sk-fake"}
        done = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_the_readme_snippet_works_as_written_against_a_server_without_keys(
    keyless: ServerProcess, tmp_path: Path
) -> None:
    _run_snippet(keyless)
    assert _count(keyless.url, "support-bot") > 0  # the spans were kept, not refused
    warned = [w for w in _warnings(keyless) if "requires no API key" in str(w["message"])]
    assert len(warned) == 1, warned  # once, however many exports carried the key
    assert _fingerprint("wk_...") in str(warned[0]["message"])
    assert "wk_..." not in keyless.output()


@pytest.mark.browser
def test_the_readme_snippets_trace_shows_in_the_ui(keyless: ServerProcess, browser: Any) -> None:
    _run_snippet(keyless)
    assert _count(keyless.url, "support-bot") > 0
    ctx = browser.new_context(base_url=keyless.url)
    try:
        page = ctx.new_page()
        page.goto("/traces?range=1h")
        row = page.get_by_role("link", name="answer").first
        row.wait_for(timeout=20_000)  # the guarded, observed `answer` of the snippet
        row.click()
        page.get_by_text("chat", exact=False).first.wait_for(timeout=20_000)
        assert "gpt-4o-mini" in page.content()  # its LLM call, with the model
    finally:
        ctx.close()


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "watchkeeper", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _spans(service: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("op"):
        pass
    return list(memory.get_finished_spans())


def _export(url: str, key: str | None, service: str) -> SpanExportResult:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, timeout=5)
    return exporter.export(_spans(service))


def _rejected(url: str, reason: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(
        rf'^watchkeeper_auth_rejected_total\{{reason="{reason}"\}} (\S+)$', text, re.M
    )
    assert found, f"no watchkeeper_auth_rejected_total{{reason={reason!r}}} on /metrics"
    return float(found.group(1))


@pytest.mark.slow
def test_a_refused_export_is_counted_and_logged_once_a_minute_per_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = _cli("keys", "create", "--project", "shop", "--role", "editor", "--data-dir", str(data))
    key = key.strip().splitlines()[-1]
    server = ServerProcess(data).start()
    try:
        wrong, other = "wk_wrong_key_of_an_old_server", "wk_another_wrong_key"
        for _ in range(3):
            assert _export(server.url, wrong, "svc") is SpanExportResult.FAILURE
        assert _export(server.url, other, "svc") is SpanExportResult.FAILURE
        assert _export(server.url, None, "svc") is SpanExportResult.FAILURE
        assert _export(server.url, key, "svc") is SpanExportResult.SUCCESS

        assert _rejected(server.url, "unknown") == 4
        assert _rejected(server.url, "missing") == 1
        assert _rejected(server.url, "malformed") == 0
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "watchkeeper_auth_rejected_total{project=" not in metrics  # a health metric
        refused = [w for w in _warnings(server) if str(w["message"]).startswith("refused")]
        messages = [str(w["message"]) for w in refused]
        assert len(refused) == 3, messages  # one per credential: 2 keys and the missing one
        assert sum(_fingerprint(wrong) in m for m in messages) == 1
        assert sum(_fingerprint(other) in m for m in messages) == 1
        assert all("POST /v1/traces from 127.0.0.1" in m for m in messages)
        log = server.output()
        assert wrong not in log and other not in log and key not in log
    finally:
        server.stop()


@pytest.mark.slow
def test_auth_stays_required_after_the_last_key_is_revoked(tmp_path: Path) -> None:
    """Accepting stray keys is for servers that never required one: auth still latches on."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        assert _export(server.url, "wk_stray", "svc") is SpanExportResult.SUCCESS
        created = httpx.post(f"{server.url}/api/v1/keys", json={"project": "shop"}, timeout=10)
        assert created.status_code == 201, created.text
        assert _export(server.url, "wk_stray", "svc") is SpanExportResult.FAILURE
        _cli("keys", "revoke", "--key-id", created.json()["key_id"], "--data-dir", str(data))
        time.sleep(2.5)  # past the server's cache of "are there keys"
        assert _export(server.url, "wk_stray", "svc") is SpanExportResult.FAILURE
        assert _export(server.url, None, "svc") is SpanExportResult.FAILURE
        assert _rejected(server.url, "unknown") == 2
    finally:
        server.stop()
