"""A server on each store engine keeps its logs there: records in through `POST /v1/logs`,
found again through `GET /api/v1/logs` (words, severity, service), counted by service
(`GET /api/v1/logs/services`), kept across a restart, and dropped by retention. With
ClickHouse (on chDB) the logs go to the span store's database, not a local DuckDB file."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.eventually import eventually
from tests.logs.test_http import _logs, _server
from tests.store.conftest import chdb_url
from watchkeeper.store.clickhouse_logs import ClickHouseLogStore
from watchkeeper.store.duckdb_logs import DuckDBLogStore

_DATABASES = itertools.count()
DAY_NS = 86_400 * 10**9


def store_section(engine: str, tmp_path: Path) -> dict[str, Any]:
    """The configuration sections of a server whose stores are on `engine`."""
    if engine == "duckdb":
        return {}
    return {"store": {"backend": "clickhouse", "clickhouse_url": chdb_url(tmp_path),
                      "clickhouse_database": f"logsrv{next(_DATABASES)}"}}  # fmt: skip


def _post(url: str, service: str, *records: tuple[str, str, int]) -> None:
    body = {
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name",
                                         "value": {"stringValue": service}}]},
            "scopeLogs": [{"logRecords": [
                {"timeUnixNano": str(t), "severityText": sev, "body": {"stringValue": text}}
                for sev, text, t in records
            ]}],
        }]
    }  # fmt: skip
    r = httpx.post(f"{url}/v1/logs", content=orjson.dumps(body), timeout=30,
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_a_server_keeps_logs_on_its_store_engine(engine: str, tmp_path: Path) -> None:
    sections = store_section(engine, tmp_path) | {"auth": {"required": False}}
    now = time.time_ns()
    with _server(tmp_path / "data", **sections) as (url, svc):
        kind = ClickHouseLogStore if engine == "clickhouse" else DuckDBLogStore
        assert isinstance(svc.logs_ingest.store, kind)
        _post(url, "checkout", ("INFO", "order 1 placed", now - 3000),
              ("ERROR", "payment gateway timeout", now - 2000))  # fmt: skip
        _post(url, "search", *(("INFO", f"query {i} served", now - i) for i in range(3)))
        _post(url, "checkout", ("INFO", "order 1 placed", now - 3000))  # delivered twice
        assert svc.logs_ingest.flush(30)
        assert [r["body"] for r in _logs(url, range="1h", q="timeout")["records"]] == [
            "payment gateway timeout"
        ]
        assert len(_logs(url, range="1h", service="checkout")["records"]) == 2
        assert [r["service"] for r in _logs(url, range="1h", severity="error")["records"]] == [
            "checkout"
        ]
        r = httpx.get(f"{url}/api/v1/logs/services", params={"range": "1h"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"services": [{"service": "search", "records": 3},
                                         {"service": "checkout", "records": 2}]}  # fmt: skip
        bad = httpx.get(f"{url}/api/v1/logs/services", params={"range": "1y"}, timeout=30)
        assert bad.status_code == 400
    assert (tmp_path / "data" / "logs.duckdb").exists() == (engine == "duckdb")
    with _server(tmp_path / "data", **sections) as (url, svc):  # restarted: still there
        assert svc.logs_ingest.store.count() == 5


def test_retention_drops_old_logs_on_clickhouse(tmp_path: Path) -> None:
    sections = store_section("clickhouse", tmp_path) | {
        "auth": {"required": False},
        "logs": {"retention_days": 2},
        "retention": {"days": 30, "check_interval_s": 0.2},
    }
    now = time.time_ns()
    with _server(tmp_path / "data", **sections) as (url, svc):
        _post(url, "old", ("INFO", "four days old", now - 4 * DAY_NS))
        _post(url, "new", ("INFO", "a day old", now - DAY_NS))
        assert svc.logs_ingest.flush(30)

        def bodies() -> list[str]:
            return sorted(r["body"] for r in _logs(url, range="7d")["records"])

        assert eventually(bodies, 15, until=lambda b: b == ["a day old"]) == ["a day old"]
