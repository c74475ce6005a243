"""/metrics: health for anyone, span-derived series only with a key and only of its project."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.eventually import eventually
from tests.server.conftest import ADMIN_TOKEN, Running
from watchkeeper.server._roles import Role
from watchkeeper.store.duckdb import WRITE_PARTS

SPAN_SERIES = (
    "watchkeeper_spans",
    "watchkeeper_span_duration_seconds",
    "watchkeeper_cost_usd",
    "watchkeeper_tokens",
)


def _send(server: Running, key: str | None, service: str) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100,
        "input.value": "a prompt",  # a payload
    }
    with provider.get_tracer("t").start_as_current_span("chat gpt-4o", attributes=attrs):
        pass
    headers = {"Authorization": f"Bearer {key}"} if key else None
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers=headers, timeout=10)
    assert exporter.export(list(memory.get_finished_spans())) is SpanExportResult.SUCCESS


def _projects(text: str) -> dict[str, set[str]]:
    """Per span-derived family, the projects its samples name."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in SPAN_SERIES:
            out[family.name] = {s.labels["project"] for s in family.samples}
    return out


def _stored(server: Running, key: str | None, n: int) -> bool:
    r = server.get("/api/v1/summary", key, params={"range": "1h"})
    return r.status_code == 200 and r.json()["count"] >= n


@pytest.fixture
def keyed(make_server: Callable[..., Running]) -> tuple[Running, str, str]:
    """A server with keys for alpha and beta, one stored span each."""
    server = make_server(auth={"admin_token": ADMIN_TOKEN})
    _, alpha = server.services.keys.create("alpha", role=Role.EDITOR)
    _, beta = server.services.keys.create("beta", role=Role.EDITOR)
    _send(server, alpha, "alpha-svc")
    _send(server, beta, "beta-svc")
    assert eventually(lambda: _stored(server, alpha, 1) and _stored(server, beta, 1), 30)
    return server, alpha, beta


@pytest.mark.slow
def test_without_a_key_metrics_show_health_and_no_project(keyed: tuple[Running, str, str]) -> None:
    server, _, _ = keyed
    r = server.get("/metrics")
    assert r.status_code == 200
    assert "watchkeeper_ingest_spans_accepted_total" in r.text
    assert "process_cpu_seconds_total" in r.text
    assert "watchkeeper_span_metrics_over_cap_total" in r.text
    assert _projects(r.text) == {}
    assert "alpha" not in r.text and "beta" not in r.text
    samples = {(s.name, s.labels.get("query") or s.labels.get("part")): s.value
               for f in text_string_to_metric_families(r.text) for s in f.samples}  # fmt: skip
    assert samples[("watchkeeper_store_query_seconds_count", "summary")] >= 2  # the fixture's
    for part in WRITE_PARTS:  # the fixture's spans were written: each part but the merge
        seen = samples.get(("watchkeeper_store_write_seconds_count", part), 0)
        assert seen >= (part not in ("merge", "reopen")), part  # two spans: neither ran
    assert samples[("watchkeeper_store_memory_bytes", None)] > 0
    heap = {s.labels["state"]: s.value for f in text_string_to_metric_families(r.text)
            for s in f.samples if s.name == "watchkeeper_process_malloc_bytes"}  # fmt: skip
    assert heap["in_use"] > 2**20 and heap["free"] >= 0, heap  # glibc (Debian's): it can say


@pytest.mark.slow
def test_a_key_sees_only_its_project(keyed: tuple[Running, str, str]) -> None:
    server, alpha, beta = keyed
    for key, project, service in ((alpha, "alpha", "alpha-svc"), (beta, "beta", "beta-svc")):
        r = server.get("/metrics", key)
        assert r.status_code == 200
        assert "watchkeeper_ingest_spans_accepted_total" in r.text
        assert _projects(r.text) == {name: {project} for name in SPAN_SERIES}
        assert service in r.text
        other = "beta" if project == "alpha" else "alpha"
        assert other not in r.text
    # The same key through X-API-Key, as some scrapers send it.
    r = server.get("/metrics", headers={"X-API-Key": alpha})
    assert _projects(r.text)["watchkeeper_spans"] == {"alpha"}


@pytest.mark.slow
def test_the_admin_token_sees_every_project(keyed: tuple[Running, str, str]) -> None:
    server, _, _ = keyed
    r = server.get("/metrics", ADMIN_TOKEN)
    assert _projects(r.text)["watchkeeper_spans"] == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        ({"Authorization": "Bearer wk_not-a-key"}, "wk_not-a-key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "dXNlcjpwYXNz"),
        ({"Authorization": "Bearer"}, None),
        ({"X-API-Key": "wk_not-a-key"}, "wk_not-a-key"),
    ],
)
@pytest.mark.slow
def test_wrong_or_malformed_credentials_get_401_naming_no_secret(
    keyed: tuple[Running, str, str], headers: dict[str, str], secret: str | None
) -> None:
    server, _, _ = keyed
    r = server.get("/metrics", headers=headers)
    assert r.status_code == 401
    assert "watchkeeper_" not in r.text and r.json()["error"]
    assert secret is None or secret not in r.text


@pytest.mark.slow
def test_a_revoked_key_gets_401(keyed: tuple[Running, str, str]) -> None:
    server, alpha, _ = keyed
    key_id = next(k.key_id for k in server.services.keys.list() if k.project == "alpha")
    assert server.services.keys.revoke(key_id)
    assert server.get("/metrics", alpha).status_code == 401


@pytest.mark.slow
def test_with_auth_off_everything_is_served_without_a_key(
    make_server: Callable[..., Running],
) -> None:
    server = make_server()  # no keys, no admin token: loopback only
    _send(server, None, "open-svc")
    assert eventually(lambda: _stored(server, None, 1), 30)
    r = server.get("/metrics")
    assert r.status_code == 200
    assert _projects(r.text)["watchkeeper_spans"] == {"default"}
    assert "open-svc" in r.text
