"""The Prometheus HTTP API as Grafana's Prometheus data source uses it: form POSTs, the
lookups behind its query editor, build info, and Prometheus's error answers."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.metrics.conftest import Server

T = 1_700_000_000


@pytest.fixture
def filled(server: Server) -> Server:
    points = [{"timeUnixNano": str((T + i) * 10**9), "asDouble": i} for i in range(0, 120, 10)]
    metrics = [
        {
            "name": "jobs_done_total",
            "description": "Jobs done.",
            "sum": {
                "isMonotonic": True,
                "aggregationTemporality": 2,
                "dataPoints": [
                    {**p, "attributes": [{"key": "queue", "value": {"stringValue": q}}]}
                    for p in points
                ],
            },
        }
        for q in ("fast", "slow")
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "worker"}}]}
    doc = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": metrics}]}]}
    r = httpx.post(
        f"{server.url}/v1/metrics",
        content=orjson.dumps(doc),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    server.flush()
    return server


def test_grafana_style_form_post_and_lookups(filled: Server) -> None:
    r = httpx.post(
        f"{filled.url}/prometheus/api/v1/query_range",
        data={
            "query": "sum(rate(jobs_done_total[1m]))",
            "start": T + 60,
            "end": T + 110,
            "step": 10,
        },
    )
    assert r.status_code == 200, r.text
    (series,) = r.json()["data"]["result"]
    assert series["metric"] == {}
    assert [t for t, _v in series["values"]] == [T + 60, T + 70, T + 80, T + 90, T + 100, T + 110]
    assert all(float(v) == pytest.approx(2.0) for _t, v in series["values"])

    labels = filled.prom("labels").json()["data"]
    assert labels == ["__name__", "job", "queue"]
    values = filled.prom("label/queue/values", **{"match[]": "jobs_done_total"}).json()["data"]
    assert values == ["fast", "slow"]
    series_list = filled.prom("series", **{"match[]": '{queue="slow"}'}).json()["data"]
    assert series_list == [{"__name__": "jobs_done_total", "job": "worker", "queue": "slow"}]
    meta = filled.prom("metadata").json()["data"]
    assert meta == {"jobs_done_total": [{"type": "counter", "help": "Jobs done.", "unit": ""}]}
    assert filled.prom("status/buildinfo").json()["data"]["version"].startswith("2.")


@pytest.mark.parametrize(
    ("params", "status", "kind", "message"),
    [
        ({"query": "sum(rate(x[5m])"}, 400, "bad_data", "parse error: unclosed left parenthesis"),
        ({"query": ""}, 400, "bad_data", "no expression"),
        ({"query": 'count_values("v", up)'}, 400, "bad_data", "not supported yet"),
        ({"query": 'jobs_done_total{queue=~"("}'}, 400, "bad_data", "illegal regex"),
        ({"query": "up", "time": "yesterday"}, 400, "bad_data", "cannot parse 'yesterday'"),
        ({"query": "up", "time": "inf"}, 400, "bad_data", "cannot parse"),
        (
            {"query": "jobs_done_total + on() jobs_done_total", "time": str(T + 100)},
            422,
            "execution",
            "many-to-many matching not allowed",
        ),
    ],
)
def test_errors_are_prometheus_errors(
    filled: Server, params: dict[str, str], status: int, kind: str, message: str
) -> None:
    r = filled.prom("query", **params)
    assert r.status_code == status, r.text
    body = r.json()
    assert (body["status"], body["errorType"]) == ("error", kind)
    assert message in body["error"]


def test_range_query_limits(filled: Server) -> None:
    too_fine = filled.prom("query_range", query="up", start=str(T), end=str(T + 86400), step="1")
    assert too_fine.status_code == 400 and "11,000 points" in too_fine.json()["error"]
    backwards = filled.prom("query_range", query="up", start=str(T + 10), end=str(T), step="1")
    assert backwards.status_code == 400
    zero = filled.prom("query_range", query="up", start=str(T), end=str(T + 10), step="0")
    assert zero.status_code == 400
    matrix = filled.prom("query_range", query="up[5m]", start=str(T), end=str(T + 10), step="5s")
    assert matrix.status_code == 400 and "range vector" in matrix.json()["error"]
    assert filled.prom("series").status_code == 400  # match[] is required


def test_a_read_past_the_engine_memory_is_an_answer_not_a_500(filled: Server) -> None:
    """DuckDB out of the memory it may use (here its real limit, set very low): Prometheus's
    422 `execution` on its API, a 503 with Retry-After elsewhere (a rule's test), each
    saying what to do; never a 500. The next read, under the limit again, answers."""
    store = filled.services.metrics_ingest.store
    used = store._con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()
    store._con.execute(f"SET memory_limit = '{int(used[0][0]) + 300_000}B'")  # a block more
    try:
        r = filled.prom("query", query="jobs_done_total", time=str(T + 100))
        assert r.status_code == 422, r.text
        assert r.json()["errorType"] == "execution"
        assert "more memory than the store may use (store.memory_limit_mb)" in r.json()["error"]
        rule = {"id": "jobs", "kind": "promql", "expr": "jobs_done_total > 1", "for": "0s"}
        r = httpx.post(f"{filled.url}/api/v1/rules/test", json=rule, timeout=10)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5" and "narrow its time range" in r.json()["error"]
    finally:
        store._con.execute("RESET memory_limit")
    assert filled.prom("query", query="jobs_done_total", time=str(T + 100)).status_code == 200
