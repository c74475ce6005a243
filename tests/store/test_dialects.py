"""Every query rendered for DuckDB and for ClickHouse (run on chDB) gives the same rows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from chdb import session

from tests.datagen import generate
from watchkeeper.store import SpanFilter
from watchkeeper.store import _render as r
from watchkeeper.store._arrow import spans_table
from watchkeeper.store._clickhouse_schema import create_statements
from watchkeeper.store._dialect import CLICKHOUSE, DUCKDB, Dialect
from watchkeeper.store._duckdb_schema import migrate

DATA = generate("demo", 150)
F = SpanFilter("demo")
T0 = DATA.spans[0].start_ns
QUERIES: dict[str, Any] = {
    "summary": lambda d: r.summary_query(F, d),
    "summary llm gpt-4o": lambda d: r.summary_query(
        SpanFilter("demo", scope="llm", models=("gpt-4o",), min_duration_ms=500.0), d
    ),
    "summary last 40": lambda d: r.summary_query(SpanFilter("demo", scope="requests"), d, 40),
    "breakdown model by p95": lambda d: r.breakdown_query(F, d, "model", 10, "p95"),
    "breakdown user by cost": lambda d: r.breakdown_query(F, d, "user", 3, "cost"),
    "top keys": lambda d: r.top_keys_query(F, d, "service", 5),
    "top keys by cost": lambda d: r.top_keys_query(F, d, "user", 3, "cost"),
    "breakdown of given keys": lambda d: r.breakdown_query(
        F, d, "provider", 5, "errors", ["openai", None]
    ),
    "series": lambda d: r.timeseries_query(F, d, 1800 * 10**9, "service", ["chat-api"]),
    "series with nulls": lambda d: r.timeseries_query(F, d, 3600 * 10**9, "provider", [None]),
    "heatmap": lambda d: r.heatmap_query(
        SpanFilter("demo", start_ns=T0, end_ns=T0 + 7200 * 10**9), d, 600 * 10**9, [500, 2000]
    ),
    "search": lambda d: r.search_query(
        SpanFilter("demo", outcomes=("error",)), d, 7, (DATA.spans[300].start_ns, "f")
    ),
    "sessions": lambda d: r.activity_query(F, d, "session", 5),
    "count": lambda d: r.count_query("demo", d),
}


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, Any]]:
    """The same rows in DuckDB and in chDB."""
    table = spans_table(DATA.spans)
    duck = duckdb.connect()
    migrate(duck)
    duck.register("rows", table)
    duck.execute("INSERT INTO spans SELECT * FROM rows")
    ch = session.Session()
    for sql in create_statements(ttl_days=3650):
        ch.query(sql)
    ch.query("INSERT INTO spans SELECT * FROM Python(table)")
    yield {"duckdb": duck, "clickhouse": ch}
    duck.close()
    ch.close()


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)  # ClickHouse quotes 64-bit integers in JSON
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def _run(engines: dict[str, Any], dialect: Dialect, q: r.Query) -> list[Any]:
    if dialect is DUCKDB:
        return _norm(engines["duckdb"].execute(q.sql, q.params).fetchall())
    out = engines["clickhouse"].query(q.sql, "JSONCompact", params=q.params)
    return _norm(json.loads(out.bytes())["data"] if out.bytes() else [])


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_both_dialects_agree(engines: dict[str, Any], name: str) -> None:
    duck = _run(engines, DUCKDB, QUERIES[name](DUCKDB))
    ch = _run(engines, CLICKHOUSE, QUERIES[name](CLICKHOUSE))
    assert duck, "the query should find rows"
    assert len(ch) == len(duck)
    for got, want in zip(ch, duck, strict=True):
        for a, b in zip(_flat(got), _flat(want), strict=True):
            assert a == (pytest.approx(b, rel=1e-9) if isinstance(b, float) else b), (got, want)


def _flat(row: Any) -> list[Any]:
    return [x for v in row for x in (_flat(v) if isinstance(v, list) else [v])]
