"""The same samples in a real Prometheus and in Watchkeeper, the same PromQL, the same numbers.

Two hours of counters (one with a reset), histograms and gauges (one with a gap longer
than the lookback) are written as OpenMetrics, turned into TSDB blocks by `promtool tsdb
create-blocks-from openmetrics`, and served by Debian's `prometheus`; the same samples go
to Watchkeeper through `POST /v1/metrics` (OTLP/JSON gauges named as the series). Each
expression is asked of both at instant times and as a range query, through each one's HTTP
API, and the answers must match series for series, within float tolerance.

Samples sit half a second off the query steps, so no sample lies on a window's edge:
Prometheus 2 closes windows on the left and Prometheus 3 (and we) leave them open.
"""

from __future__ import annotations

import math
import random
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.alerting.exports.conftest import run, tool
from tests.eventually import eventually
from tests.metrics.conftest import Server
from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server.app import build_services, create_app

T0 = 1_700_000_000  # seconds; a fixed past: blocks are only read, never compacted away
STEP_S = 15
POINTS = 2 * 3600 // STEP_S

#: labels (the name included) -> [(unix seconds, value)]
Series = dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]


def _samples() -> Series:
    """Deterministic samples: labels (name included) -> [(seconds, value)]."""
    rnd = random.Random(13)
    out: Series = {}

    def add(name: str, labels: dict[str, str], points: list[tuple[float, float]]) -> None:
        out[tuple(sorted({"__name__": name, **labels}.items()))] = points

    times = [T0 + i * STEP_S + 0.5 for i in range(POINTS)]
    for job in ("api", "worker"):
        for code in ("200", "500"):
            total, points = 0.0, []
            for i, t in enumerate(times):
                total += rnd.randint(0, 20 if code == "200" else 3)
                if job == "worker" and code == "200" and i == POINTS // 2:
                    total = rnd.randint(0, 5)  # the process restarted: a counter reset
                points.append((t, total))
            add("http_requests_total", {"job": job, "code": code, "instance": f"{job}:9"}, points)
        counts = {le: 0.0 for le in ("0.1", "0.5", "1", "+Inf")}
        total_sum, buckets = 0.0, {le: [] for le in counts}
        sums, totals = [], []
        for t in times:
            for _ in range(rnd.randint(0, 10)):
                v = rnd.expovariate(3.0 if job == "api" else 1.0)
                total_sum += v
                for le in counts:
                    if le == "+Inf" or v <= float(le):
                        counts[le] += 1
            for le in counts:
                buckets[le].append((t, counts[le]))
            sums.append((t, total_sum))
            totals.append((t, counts["+Inf"]))
        for le, points in buckets.items():
            add("http_request_duration_seconds_bucket", {"job": job, "le": le}, points)
        add("http_request_duration_seconds_sum", {"job": job}, sums)
        add("http_request_duration_seconds_count", {"job": job}, totals)
        depth, points = 5.0, []
        for i, t in enumerate(times):
            depth = max(0.0, depth + rnd.uniform(-2, 2.2))
            if not (job == "worker" and 200 <= i < 240):  # ten minutes without a sample
                points.append((t, round(depth, 3)))
        add("queue_depth", {"job": job}, points)
        add("up", {"job": job}, [(t, 0.0 if job == "worker" and 300 <= i < 310 else 1.0)
                                 for i, t in enumerate(times)])  # fmt: skip
    return out


_FAMILIES = {
    "http_requests": ("counter", ("http_requests_total",)),
    "http_request_duration_seconds": (
        "histogram",
        tuple(f"http_request_duration_seconds_{s}" for s in ("bucket", "sum", "count")),
    ),
    "queue_depth": ("gauge", ("queue_depth",)),
    "up": ("gauge", ("up",)),
}


def _openmetrics(samples: Series) -> str:
    lines = []
    for family, (kind, names) in _FAMILIES.items():
        lines.append(f"# TYPE {family} {kind}")
        for labels, points in samples.items():
            name = dict(labels)["__name__"]
            if name not in names:
                continue
            text = ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
            lines += [f"{name}{{{text}}} {v!r} {t}" for t, v in points]
    return "\n".join(lines) + "\n# EOF\n"


def _otlp(samples: Series) -> Iterator[bytes]:
    """One OTLP/JSON request per series: gauges named as the series, labels as attributes."""
    for labels, points in samples.items():
        attrs = [{"key": k, "value": {"stringValue": v}} for k, v in labels if k != "__name__"]
        data_points = [
            {"timeUnixNano": str(round(t * 1000) * 1_000_000), "asDouble": v, "attributes": attrs}
            for t, v in points
        ]
        metric = {"name": dict(labels)["__name__"], "gauge": {"dataPoints": data_points}}
        yield orjson.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]})


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary, promtool = tool("prometheus"), tool("promtool")
    work = tmp_path_factory.mktemp("prometheus")
    (work / "samples.om").write_text(_openmetrics(_samples()))
    run(promtool, "tsdb", "create-blocks-from", "openmetrics", work / "samples.om", work / "tsdb")
    (work / "prometheus.yml").write_text("global: {}\n")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        ready = eventually(lambda: _ready(url), 60, 0.2)
        assert ready, "prometheus did not become ready"
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def watchkeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:

    data = tmp_path_factory.mktemp("watchkeeper")
    config = load_config(
        env={},
        overrides={"server": {"data_dir": str(data), "port": 0}, "auth": {"required": False}},
    )
    svc = build_services(config)
    with serve_in_thread(create_app(config, services=svc)) as url:
        headers = {"Content-Type": "application/json"}
        for body in _otlp(_samples()):
            r = httpx.post(f"{url}/v1/metrics", content=body, headers=headers, timeout=30)
            assert r.status_code == 200 and "partialSuccess" not in r.json(), r.text
        server = Server(url, svc)
        server.flush()
        yield server


EXPRESSIONS = [
    "http_requests_total",
    'http_requests_total{code=~"5.."}',
    'http_requests_total{job!="api", code!~"2.*"}',
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "resets(http_requests_total[1h])",
    "delta(queue_depth[10m])",
    "idelta(queue_depth[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance, code) (rate(http_requests_total[5m]))",
    "sum(rate(http_requests_total[5m]))",
    "avg(queue_depth)",
    "min by (job) (queue_depth)",
    "max(queue_depth)",
    "count(up == 1)",
    "count by (code) (http_requests_total)",
    "group by (job) (up)",
    "quantile(0.9, queue_depth)",
    "stddev(queue_depth)",
    "stdvar(rate(http_requests_total[5m]))",
    "histogram_quantile(0.95, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[10m]))",
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(2, rate(http_requests_total[5m]))",
    "bottomk(1, queue_depth)",
    'rate(http_requests_total{code="500"}[5m])'
    ' / ignoring(code) rate(http_requests_total{code="200"}[5m])',
    'sum by (job) (rate(http_requests_total{code="500"}[5m]))'
    " / sum by (job) (rate(http_requests_total[5m])) > 0.05",
    "queue_depth > 5",
    "queue_depth > bool 5",
    "5 < queue_depth",
    "2 * queue_depth + 1",
    "-queue_depth",
    "queue_depth % 3",
    "queue_depth ^ 2",
    "http_requests_total offset 10m",
    "rate(http_requests_total[5m] offset 30m)",
    "up and on(job) queue_depth > 3",
    "queue_depth or up",
    "queue_depth unless on(job) up == 0",
    "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
    "http_requests_total / on(job) group_left sum by (job) (http_requests_total)",
    "sum by (job) (http_requests_total) * on(job) group_right up",
    "max_over_time(queue_depth[10m])",
    "min_over_time(queue_depth[10m])",
    "avg_over_time(queue_depth[10m])",
    "sum_over_time(queue_depth[10m])",
    "count_over_time(queue_depth[10m])",
    "last_over_time(queue_depth[10m])",
    "quantile_over_time(0.9, queue_depth[30m])",
    "stddev_over_time(queue_depth[30m])",
    "changes(up[30m])",
    "deriv(queue_depth[10m])",
    "predict_linear(queue_depth[30m], 3600)",
    "clamp_max(queue_depth, 5)",
    "clamp(queue_depth, 2, 6)",
    "abs(deriv(queue_depth[10m]))",
    "round(queue_depth)",
    "round(queue_depth, 0.5)",
    "sqrt(queue_depth)",
    'absent(nonexistent{job="x"})',
    "absent(up)",
    "vector(1)",
    "scalar(sum(up))",
    "time()",
    "sum(up) + 1",
    "1 + 2 * 3",
    'label_replace(up, "service", "svc-$1", "job", "(.*)")',
]
#: Instant query times: early (windows not yet full), in the gap, after the reset, late.
TIMES = [T0 + 240, T0 + 3060, T0 + 3660, T0 + 3900, T0 + 6900, T0 + 7140]


def _answer(url: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    r = httpx.get(f"{url}{path}", params=params, timeout=30)
    assert r.status_code == 200, f"{url}{path} {params}: {r.text}"
    data: dict[str, Any] = r.json()["data"]
    return data


def _normal(data: dict[str, Any]) -> tuple[str, dict[str, list[tuple[float, float]]]]:
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return kind, {"": [(float(result[0]), float(result[1]))]}
    out = {}
    for s in result:
        key = ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()))
        points = s["values"] if "values" in s else [s["value"]]
        out[key] = [(float(t), float(v)) for t, v in points]
    return kind, out


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _same(ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    (kind_a, a), (kind_b, b) = _normal(ours), _normal(theirs)
    if kind_a != kind_b:
        return f"result type {kind_a} != {kind_b}"
    if set(a) != set(b):
        return f"series differ: ours only {set(a) - set(b)}, Prometheus only {set(b) - set(a)}"
    for key in a:
        pa, pb = a[key], b[key]
        if [t for t, _ in pa] != [t for t, _ in pb]:
            return f"{key}: times differ: {pa} vs {pb}"
        bad = [(t, x, y) for (t, x), (_, y) in zip(pa, pb, strict=True) if not _close(x, y)]
        if bad:
            return f"{key}: values differ (time, ours, Prometheus): {bad[:5]}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_instant_queries_match_prometheus(prometheus: str, watchkeeper: Server, expr: str) -> None:
    problems = []
    for t in TIMES:
        params = {"query": expr, "time": str(t)}
        ours = _answer(watchkeeper.url, "/prometheus/api/v1/query", params)
        theirs = _answer(prometheus, "/api/v1/query", params)
        problem = _same(ours, theirs)
        if problem:
            problems.append(f"at T0+{t - T0}s: {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("expr", [e for e in EXPRESSIONS if "absent(up)" not in e])
def test_range_queries_match_prometheus(prometheus: str, watchkeeper: Server, expr: str) -> None:
    params = {"query": expr, "start": str(T0 + 60), "end": str(T0 + 7200), "step": "60"}
    ours = _answer(watchkeeper.url, "/prometheus/api/v1/query_range", params)
    theirs = _answer(prometheus, "/api/v1/query_range", params)
    assert _same(ours, theirs) is None, _same(ours, theirs)


@pytest.mark.slow
def test_the_data_is_really_there(prometheus: str, watchkeeper: Server) -> None:
    """Not a comparison of two empty answers."""
    params = {"query": "count(http_requests_total)", "time": str(T0 + 3600)}
    assert _normal(_answer(prometheus, "/api/v1/query", params))[1] == {"": [(T0 + 3600, 4.0)]}
    ours = _answer(watchkeeper.url, "/prometheus/api/v1/query", params)
    assert _normal(ours)[1] == {"": [(T0 + 3600, 4.0)]}
    for path, base in (("/prometheus/api/v1/", watchkeeper.url), ("/api/v1/", prometheus)):
        names = httpx.get(f"{base}{path}label/__name__/values").json()["data"]
        assert set(names) >= {"http_requests_total", "queue_depth", "up"}
