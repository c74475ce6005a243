"""ClickHouse down (issue 11, "Bad input and faults"): at start the server says which one it
cannot reach and exits; during ingest the spans wait in the spool, `/readyz` says why, ingest
answers 503 with Retry-After once the spool passes its bound, and every acknowledged span is
written, once, when ClickHouse is back.

The ClickHouse here is a real HTTP server speaking ClickHouse's HTTP interface in front of the
chDB engine (`chdb_http`), stopped and started again on the same port; the server is a real
`watchkeeper serve` process.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.eventually import eventually
from tests.server._process import ServerProcess, free_port
from tests.store.chdb_http import ChdbHttp
from tests.store.conftest import chdb_url
from watchkeeper.errors import StoreError
from watchkeeper.model import SpanBatch
from watchkeeper.store.clickhouse import ClickHouseStore

JSON = {"content-type": "application/json"}
SPANS_PER_REQUEST = 200
_IDS = itertools.count(1)


def _body(ids: list[int], now: int) -> bytes:
    spans = [
        {
            "traceId": f"{i // 4 + 1:032x}",
            "spanId": f"{i:016x}",
            "name": "down",
            "startTimeUnixNano": str(now + i),
            "endTimeUnixNano": str(now + i + 5_000_000),
        }
        for i in ids
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    return orjson.dumps({"resourceSpans": [{"resource": resource,
                                            "scopeSpans": [{"spans": spans}]}]})  # fmt: skip


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ChdbHttp]:
    server = ChdbHttp(chdb_url(tmp_path).removeprefix("chdb://"))
    server.start()
    yield server
    server.close()


@pytest.mark.slow
def test_serve_names_the_clickhouse_it_cannot_reach_and_exits(tmp_path: Path) -> None:
    url = f"http://wk:hunter2-pw@127.0.0.1:{free_port()}"
    out = subprocess.run(
        [sys.executable, "-m", "watchkeeper", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port()), "--store", "clickhouse", "--clickhouse-url", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    assert f"cannot reach ClickHouse at http://wk:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in (
        out.stderr
    )
    assert "check store.clickhouse_url" in out.stderr and "hunter2" not in out.stderr


@pytest.mark.slow
def test_spans_acknowledged_while_clickhouse_is_down_are_written_once_back(
    tmp_path: Path, clickhouse: ChdbHttp
) -> None:
    database = f"down{time.time_ns()}"
    env = {
        "WATCHKEEPER_STORE__CLICKHOUSE_DATABASE": database,
        "WATCHKEEPER_INGEST__LAG_BUDGET_S": "0",  # the spool's bound decides, nothing else
        "WATCHKEEPER_INGEST__SPOOL_MAX_BACKLOG_BYTES": "150000",
    }
    server = ServerProcess(
        tmp_path / "data", None, "--store", "clickhouse", "--clickhouse-url", clickhouse.url,
        env=env,
    ).start()  # fmt: skip
    now = time.time_ns()
    acked: set[int] = set()

    def send(client: httpx.Client) -> httpx.Response:
        ids = [next(_IDS) for _ in range(SPANS_PER_REQUEST)]
        r = client.post(f"{server.url}/v1/traces", content=_body(ids, now), headers=JSON)
        if r.status_code == 200:
            acked.update(ids)
        return r

    def stored() -> list[list[int]]:
        return clickhouse.rows(
            f"SELECT count(), uniqExact(span_id), "
            f"(SELECT sum(n) FROM {database}.totals_rollup) FROM {database}.spans"
        )

    try:
        with httpx.Client(timeout=30) as client:
            for _ in range(3):
                assert send(client).status_code == 200
            assert eventually(stored, 30, 0.2, until=lambda r: r[0][0] == len(acked))[0][0] == 600
            clickhouse.stop()
            ready = eventually(
                lambda: httpx.get(f"{server.url}/readyz", timeout=10),
                30, 0.2, until=lambda r: r.status_code == 503,
            )  # fmt: skip
            assert ready.status_code == 503, ready.text
            assert "span store does not answer" in ready.json()["error"]
            before = len(acked)
            for _ in range(200):  # until the spool passes its bound
                r = send(client)
                if r.status_code != 200:
                    break
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1 and "backlog" in r.text
            assert len(acked) > before  # acknowledged while ClickHouse was down
            failed = eventually(lambda: _write_errors(server.url), 30, 0.2)
            assert failed > 0  # the writer tried them and keeps them for later
            clickhouse.start()  # back, on the same port
            ready = eventually(
                lambda: httpx.get(f"{server.url}/readyz", timeout=10),
                60, 0.5, until=lambda r: r.status_code == 200,
            )  # fmt: skip
            assert ready.status_code == 200, ready.text
            got = eventually(stored, 60, 0.5, until=lambda r: r[0][0] >= len(acked))
            assert got == [[len(acked), len(acked), len(acked)]]  # none lost, none twice
            ids = clickhouse.rows(f"SELECT DISTINCT span_id FROM {database}.spans")
            assert {int(row[0], 16) for row in ids} == acked
            assert send(client).status_code == 200  # ingest takes spans again
    finally:
        server.stop()
    assert "failed; retrying" in server.output()  # the writer said why it waited


def _write_errors(url: str) -> float:
    """The server's count of failed store writes (its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    lines = [x for x in text.splitlines() if x.startswith("watchkeeper_ingest_store_write_errors")]
    return sum(float(x.split()[-1]) for x in lines if "_created" not in x)


def test_a_write_that_fails_half_way_is_rolled_up_again_by_the_next(
    tmp_path: Path, clickhouse: ChdbHttp
) -> None:
    """ClickHouse fails a write after it moved spans in the rollups (their trace learned its
    user) and before it filled them: the retry of the batch must not move them twice."""
    from tests.store.test_rollup import same_groups
    from tests.store.test_trace_context import TRACES, _range, _trace

    traces = [_trace(i, 0) for i in range(TRACES)]  # the root carries user and feature
    roots, rest = [t[0] for t in traces], [s for t in traces for s in t[1:]]
    raw = ClickHouseStore(chdb_url(tmp_path), database="half_raw", use_rollup=False)
    store = ClickHouseStore(clickhouse.url, database=f"half{time.time_ns()}")
    try:
        for s in (raw, store):
            s.write(SpanBatch(rest))  # the children first: no user yet
        clickhouse.refuse = r"^\s*UPDATE spans"  # after the moves, before the fill
        with pytest.raises(StoreError):
            store.write(SpanBatch(roots))
        clickhouse.refuse = None
        assert store.write(SpanBatch(roots)) == len(roots)  # the writer's retry
        raw.write(SpanBatch(roots))
        f = _range()
        for by in ("user", "feature"):
            got = store.breakdown(f, by, limit=100, percentiles=False)  # type: ignore[arg-type]
            want = raw.breakdown(f, by, limit=100, percentiles=False)  # type: ignore[arg-type]
            assert [g.key for g in got] == [w.key for w in want] and None in [g.key for g in got]
            # the key spans left keeps bounds of their extremes (docs/clickhouse.md): the
            # named keys are compared whole, that one by its counts and sums
            same_groups([g for g in got if g.key], [w for w in want if w.key])
            for g, w in zip(got, want, strict=True):
                sums = ("count", "errors", "input_tokens", "output_tokens", "missing_price")
                assert [getattr(g.summary, k) for k in sums] == [
                    getattr(w.summary, k) for k in sums
                ]
                assert g.summary.cost_usd == pytest.approx(w.summary.cost_usd)
    finally:
        store.close()
        raw.close()
