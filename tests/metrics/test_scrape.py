"""The built-in scraper (`metrics.scrape`): real targets over HTTP, a target that hangs,
credentials, staleness, and the same series as a real Prometheus scraping the same app."""

from __future__ import annotations

import base64
import contextlib
import http.server
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tests.alerting.exports.conftest import tool
from tests.eventually import eventually
from tests.metrics.conftest import Server
from tests.metrics.test_remote_write import _free_port
from watchkeeper.config import ScrapeJob
from watchkeeper.ingest._scrape import offset_s, parse_exposition, stale_markers, to_samples


class Target:
    """An HTTP /metrics target: a prometheus_client registry, optional credentials, and a
    switch that makes it hang."""

    def __init__(self, *, token: str = "", basic: tuple[str, str] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter("jobs_done", "Jobs done.", ["queue"], registry=self.registry)
        self.depth = Gauge("queue_depth", "Depth.", registry=self.registry)
        self.jobs.labels("fast").inc(3)
        self.jobs.labels("slow").inc(1)
        self.depth.set(7)
        self.hang = threading.Event()
        self.released = threading.Event()
        self.seen: list[dict[str, str]] = []
        expected = {f"Bearer {token}"} if token else set()
        if basic:
            expected.add("Basic " + base64.b64encode(":".join(basic).encode()).decode())
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.seen.append(dict(self.headers))
                if target.hang.is_set():
                    target.released.wait(3)
                if expected and self.headers.get("Authorization") not in expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = generate_latest(target.registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                with contextlib.suppress(OSError):  # a scraper that gave up: gone
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def targets() -> Iterator[dict[str, Target]]:
    made = {"app": Target(), "hang": Target(), "locked": Target(token="s3cret-token")}
    made["hang"].hang.set()
    yield made
    for t in made.values():
        t.close()


def _jobs(targets: dict[str, Target]) -> list[dict[str, Any]]:
    return [
        {"job_name": "app", "targets": [targets["app"].address], "interval_s": 1,
         "timeout_s": 0.8, "labels": {"env": "test"}},
        {"job_name": "hang", "targets": [targets["hang"].address], "interval_s": 1,
         "timeout_s": 0.3},
        {"job_name": "locked", "targets": [targets["locked"].address], "interval_s": 1,
         "timeout_s": 0.8, "bearer_token": "s3cret-token"},
    ]  # fmt: skip


def _result(server: Server, query: str) -> list[dict[str, Any]]:
    r = server.prom("query", query=query)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def _by_job(server: Server, query: str) -> dict[str, str]:
    return {s["metric"]["job"]: s["value"][1] for s in _result(server, query)}


@pytest.mark.slow
def test_scrape_jobs_up_down_credentials_and_staleness(
    make_server: Callable[..., Server], targets: dict[str, Target]
) -> None:
    server = make_server(auth={"required": False}, metrics={"scrape": _jobs(targets)})
    want = {"app": "1", "hang": "0", "locked": "1"}
    up = eventually(lambda: _by_job(server, "up"), 30, 0.2, until=lambda u: u == want)
    assert up == want  # the hanging target timed out: down
    jobs = _result(server, 'jobs_done_total{job="app"}')
    assert sorted((s["metric"]["queue"], s["value"][1]) for s in jobs) == [
        ("fast", "3"),
        ("slow", "1"),
    ]
    assert jobs[0]["metric"]["instance"] == targets["app"].address
    assert jobs[0]["metric"]["env"] == "test"
    assert float(_by_job(server, "scrape_samples_scraped")["app"]) > 4
    meta = server.prom("metadata", metric="jobs_done").json()["data"]
    assert meta == {"jobs_done": [{"type": "counter", "help": "Jobs done.", "unit": ""}]}
    assert any(h.get("Authorization") == "Bearer s3cret-token" for h in targets["locked"].seen)
    assert all("Authorization" not in h for h in targets["app"].seen)

    # A series gone from the target ends at the next scrape (a staleness marker), not 5 m on.
    targets["app"].jobs.remove("slow")
    left = eventually(
        lambda: [s["metric"]["queue"] for s in _result(server, 'jobs_done_total{job="app"}')],
        30,
        0.2,
        until=lambda q: q == ["fast"],
    )
    assert left == ["fast"]
    # The target goes down: its series end, `up` says so.
    targets["app"].close()
    depth = 'queue_depth{job="app"}'
    gone = eventually(lambda: _result(server, depth), 30, 0.2, until=lambda r: r == [])
    assert gone == []
    assert _by_job(server, 'up{job="app"}') == {"app": "0"}


def test_samples_of_a_scrape() -> None:
    text = (
        "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n"
        'jobs_total{job="x",queue="a"} 3 1700000000123\n'
        "# TYPE temp gauge\ntemp NaN\n"
    )
    target = {"job": "app", "instance": "h:1"}
    scraped = to_samples(parse_exposition(text, "text/plain"), target, 1_700_000_001_000)
    first, second = scraped.samples
    assert dict(first.labels) == {"__name__": "jobs_total", "exported_job": "x", "queue": "a",
                                  "job": "app", "instance": "h:1"}  # fmt: skip
    assert (first.t_ms, first.value) == (1_700_000_000_123, 3.0)  # its own timestamp kept
    assert second.t_ms == 1_700_000_001_000 and second.value != second.value  # NaN
    assert scraped.metadata["jobs"].type == "counter"
    gone = stale_markers({first.labels, second.labels}, {first.labels}, 5)
    assert [(s.labels, s.t_ms, s.value) for s in gone] == [(second.labels, 5, None)]
    job = ScrapeJob(job_name="j", targets=["a:1", "b:1"], interval_s=10, timeout_s=5)
    offsets = {offset_s(job, t) for t in job.targets}
    assert len(offsets) == 2 and all(0 <= o < 10 for o in offsets)


def test_a_counter_without_total_keeps_its_name() -> None:
    # As Prometheus stores it: the PostgreSQL exporter's counters have no _total suffix.
    text = (
        "# TYPE pg_stat_database_xact_commit counter\n"
        'pg_stat_database_xact_commit{datname="postgres"} 7\n'
        "# TYPE jobs_total counter\njobs_total 3\n"
    )
    scraped = to_samples(parse_exposition(text, "text/plain"), {"job": "pg"}, 1_000)
    names = [dict(s.labels)["__name__"] for s in scraped.samples]
    assert names == ["pg_stat_database_xact_commit", "jobs_total"]


@pytest.mark.slow
def test_the_same_series_as_prometheus(
    make_server: Callable[..., Server], targets: dict[str, Target], tmp_path: Path
) -> None:
    app = targets["app"].address
    job = {"job_name": "app", "targets": [app], "interval_s": 1, "timeout_s": 0.8}
    server = make_server(auth={"required": False}, metrics={"scrape": [job]})
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 800ms}\n"
        f'scrape_configs: [{{job_name: app, static_configs: [{{targets: ["{app}"]}}]}}]\n'
    )
    port = _free_port()
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def series(base: str) -> list[dict[str, str]]:
            try:
                r = httpx.get(f"{base}/series", params={"match[]": '{job="app"}'}, timeout=5)
            except httpx.HTTPError:
                return []
            data = r.json()["data"] if r.status_code == 200 else []
            return sorted(data, key=lambda s: sorted(s.items()))

        theirs = eventually(
            lambda: series(f"http://127.0.0.1:{port}/api/v1"), 60, 0.5, until=lambda s: len(s) > 10
        )
        ours = eventually(lambda: series(f"{server.url}/prometheus/api/v1"), 30, 0.5,
                          until=lambda s: len(s) >= len(theirs))  # fmt: skip
        assert ours == theirs
        static = 'queue_depth{job="app"}'
        assert _result(server, static)[0]["value"][1] == "7"
    finally:
        proc.terminate()
        proc.wait(20)
