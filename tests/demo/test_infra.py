"""What the demo runs for the metric pages: a Redis and its exporter (Debian's packages), and
the scrape jobs that read them and the demo service's /metrics — the Infrastructure page and
the FastAPI service dashboard have data on a first run."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.demo.test_demo import OPTIONS, PROFILE
from tests.eventually import eventually
from tests.server._process import ServerProcess

import watchkeeper
from watchkeeper.config import load_config
from watchkeeper.dashboards import SHIPPED_DIR, read_dashboard
from watchkeeper.demo import free_port, local_redis, run_demo, scrape_jobs, write_server_config
from watchkeeper.demo._scenario import SERVICE, Schedule


@pytest.mark.slow
def test_local_redis_runs_while_the_block_does() -> None:
    with local_redis() as target:
        assert target is not None
        body = httpx.get(f"http://{target}/metrics", timeout=5).text
        assert "redis_up 1" in body.splitlines()
        assert "redis_memory_max_bytes 6.7108864e+07" in body.splitlines()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{target}/metrics", timeout=2)


def test_the_demo_config_scrapes_its_service_and_redis(tmp_path: Path) -> None:
    jobs = scrape_jobs(8123, "127.0.0.1:9121")
    path = write_server_config(tmp_path / "demo.yaml", Schedule(), jobs)
    scrape = load_config(path, env={}).metrics.scrape
    assert [(j.job_name, j.targets) for j in scrape] == [
        (SERVICE, ["127.0.0.1:8123"]),
        ("redis", ["127.0.0.1:9121"]),
    ]
    assert [j.job_name for j in load_config(
        write_server_config(tmp_path / "no-redis.yaml", Schedule(), scrape_jobs(8123, None)),
        env={}).metrics.scrape] == [SERVICE]  # fmt: skip


def _query(url: str, expr: str, at: float) -> list[dict[str, object]]:
    body = httpx.get(f"{url}/prometheus/api/v1/query", params={"query": expr, "time": at}).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.mark.slow
def test_the_demo_fills_the_service_dashboard_and_the_redis_panels(tmp_path: Path) -> None:
    port = free_port()
    service = read_dashboard(SHIPPED_DIR / "fastapi-service.yaml")
    infra = read_dashboard(SHIPPED_DIR / "infrastructure.yaml")
    panels = {p.title: p for s in service.sections for p in s.panels}
    panels["Memory vs maxmemory"] = next(
        p for s in infra.sections for p in s.panels if p.title == "Memory vs maxmemory"
    )
    with local_redis() as exporter:
        config = write_server_config(
            tmp_path / "demo.yaml", Schedule(), scrape_jobs(port, exporter)
        )
        server = ServerProcess(tmp_path / "data", None, "--config", str(config)).start()
        try:
            try:
                run_demo(server.url, rate=10, duration=14, port=port, profile=PROFILE,
                         options=OPTIONS, seed=5, json_logs=False)  # fmt: skip
            finally:
                watchkeeper.shutdown()
            at = time.time() - 1  # while it ran: its series end (are stale) once it stops
            for title in (
                "Requests by route",
                "Duration",
                "Cache hit ratio",
                "Memory vs maxmemory",
            ):
                expr = panels[title].queries[0].promql or ""
                expr = expr.replace("$service", SERVICE).replace("$instance", ".*")
                found = eventually(lambda e=expr: _query(server.url, e, at), 15, 0.5)
                assert found, f"{title}: {expr} found nothing"
            routes = {
                r["metric"]["http_route"]
                for r in _query(
                    server.url,
                    panels["Requests by route"].queries[0].promql.replace("$service", SERVICE),
                    at,
                )
            }  # type: ignore[union-attr,index]
            assert {"/rag", "/agent"} <= routes
        finally:
            server.stop()
