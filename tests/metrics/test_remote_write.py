"""`POST /api/v1/write`: a real Prometheus scrapes an app and remote-writes to Watchkeeper;
both answer the same PromQL with the same numbers, staleness included. Bad bodies get 4xx."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cramjam
import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.alerting.exports.conftest import tool
from tests.eventually import eventually
from tests.metrics.conftest import Server
from tests.metrics.test_promql_vs_prometheus import _same
from watchkeeper.ingest._remote_write import STALE_NAN_BITS, WriteRequest


class App:
    """An app whose /metrics moves: a counter, a gauge and a histogram, fed by a thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("app_requests", "Requests.", ["route"], registry=self.registry)
        self.depth = Gauge("app_queue_depth", "Queue depth.", registry=self.registry)
        self.latency = Histogram(
            "app_latency_seconds", "Latency.", buckets=(0.1, 0.5, 1), registry=self.registry
        )
        self.stop = threading.Event()
        self.server, self.thread = start_http_server(0, "127.0.0.1", registry=self.registry)
        self.port = self.server.server_port
        threading.Thread(target=self._drive, daemon=True).start()

    def _drive(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            n += 1
            self.requests.labels("/a" if n % 3 else "/b").inc()
            self.depth.set(n % 17)
            self.latency.observe((n % 10) / 8)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def forwarding(server: Server, tmp_path: Path) -> Iterator[tuple[str, App]]:
    """A Prometheus scraping `App` every second and remote-writing to `server`."""
    binary = tool("prometheus")
    app = App()
    (tmp_path / "prometheus.yml").write_text(
        f"""
global: {{scrape_interval: 1s, scrape_timeout: 900ms}}
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ["127.0.0.1:{app.port}"]}}]
remote_write:
  - url: {server.url}/api/v1/write
    queue_config: {{batch_send_deadline: 200ms, max_samples_per_send: 200}}
    metadata_config: {{send_interval: 1s}}
"""
    )
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        proc.terminate()
        proc.wait(20)
        app.close()


def _query(url: str, path: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{url}{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _times(server: Server, at: float) -> list[int]:
    data = _query(server.url, "/prometheus/api/v1/query", query='{job="app"}[1m]', time=str(at))
    return sorted(round(float(t) * 1000) for s in data["result"] for t, _v in s["values"])


EXPRESSIONS = [
    "app_requests_total",
    "rate(app_requests_total[5s])",
    "sum by (job) (increase(app_requests_total[10s]))",
    "app_queue_depth",
    "avg_over_time(app_queue_depth[5s])",
    "histogram_quantile(0.9, rate(app_latency_seconds_bucket[5s]))",
    "up",
    "scrape_samples_scraped",
    "app_requests_total[5s]",
]


@pytest.mark.slow
def test_prometheus_remote_writes_the_same_samples(
    server: Server, forwarding: tuple[str, App]
) -> None:
    prometheus, app = forwarding
    enough = eventually(
        lambda: len(_times(server, _now(server))), 60, 0.5, until=lambda n: n >= 300
    )
    assert enough >= 300
    at_ms = round((_now(server) - 4) * 1000)
    # Wait until what Prometheus holds up to `at` has arrived, then keep the windows of the
    # expressions (5 s, 10 s, the 5 min lookback) off any sample's time.
    eventually(lambda: _times(server, _now(server))[-1] > at_ms + 2000, 30)
    stamps = set(_times(server, at_ms / 1000 + 30))
    while any(at_ms - w in stamps for w in (0, 5000, 10000, 300_000)):
        at_ms += 1
    problems = []
    for expr in EXPRESSIONS:
        params = {"query": expr, "time": str(at_ms / 1000)}
        ours = _query(server.url, "/prometheus/api/v1/query", **params)
        theirs = _query(prometheus, "/api/v1/query", **params)
        assert ours["result"], expr  # not two empty answers
        problem = _same(ours, theirs)
        if problem:
            problems.append(f"{expr}: {problem}")
    assert not problems, "\n".join(problems)
    meta = eventually(lambda: server.prom("metadata", metric="app_requests").json()["data"], 30)
    assert meta == {"app_requests": [{"type": "counter", "help": "Requests.", "unit": ""}]}

    # The target goes away: Prometheus writes staleness markers, the series end at once.
    app.close()
    gone = eventually(
        lambda: _query(server.url, "/prometheus/api/v1/query", query="app_queue_depth")["result"],
        30,
        until=lambda r: r == [],
    )
    assert gone == []
    up = _query(server.url, "/prometheus/api/v1/query", query="up")["result"]
    assert [s["value"][1] for s in up] == ["0"]


def _now(server: Server) -> float:
    return server.services.clock()


def _write_request(*series: tuple[dict[str, str], list[tuple[int, float]]]) -> bytes:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}  # fmt: skip


def test_nan_values_and_staleness_markers(server: Server) -> None:
    stale = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
    body = _write_request(
        (
            {"__name__": "temp", "room": "a"},
            [(1_700_000_000_000, 20.0), (1_700_000_001_000, float("nan"))],
        ),
        (
            {"__name__": "temp", "room": "b"},
            [(1_700_000_000_000, 21.0), (1_700_000_001_000, stale)],
        ),
    )
    r = httpx.post(f"{server.url}/api/v1/write", content=body, headers=HEADERS)
    assert r.status_code == 204, r.text
    server.flush()
    result = server.prom("query", query="temp", time="1700000002").json()["data"]["result"]
    assert [(s["metric"]["room"], s["value"][1]) for s in result] == [("a", "NaN")]


def test_bad_remote_write_bodies(make_server: Any) -> None:
    server = make_server(auth={"required": False}, ingest={"max_body_bytes": 10_000})
    url = f"{server.url}/api/v1/write"
    garbage = httpx.post(url, content=b"\x05abcde", headers=HEADERS)
    assert garbage.status_code == 400
    not_snappy = httpx.post(
        url, content=b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", headers=HEADERS
    )
    assert not_snappy.status_code == 400
    bomb = bytes(cramjam.snappy.compress_raw(b"\0" * 100_000))
    assert httpx.post(url, content=bomb, headers=HEADERS).status_code == 413
    wrong = httpx.post(url, content=b"x", headers={**HEADERS, "Content-Type": "text/plain"})
    assert wrong.status_code == 415
    nameless = _write_request(({"job": "x"}, [(1, 1.0)]), ({"__name__": "ok"}, [(1, 1.0)]))
    r = httpx.post(url, content=nameless, headers=HEADERS)
    assert r.status_code == 400 and "without a metric name" in r.text
    server.flush()
    kept = server.prom("series", **{"match[]": "ok"}).json()["data"]
    assert kept == [{"__name__": "ok"}]  # the valid series of the request are kept
