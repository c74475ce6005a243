"""What only the ClickHouse store has: its address, its schema, its configuration."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.datagen import MINUTE_NS, NEEDLE, generate
from tests.store.conftest import chdb_url
from tests.store.test_rollup import same, same_groups
from watchkeeper.config import load_config
from watchkeeper.errors import ConfigError, StoreError
from watchkeeper.model import LogRow, SpanBatch
from watchkeeper.server.app import open_store
from watchkeeper.store import SpanFilter, clickhouse_logs
from watchkeeper.store import _clickhouse_schema as schema
from watchkeeper.store._arrow import payloads_table, spans_table
from watchkeeper.store._payload import PayloadCodec
from watchkeeper.store._render import Query
from watchkeeper.store.clickhouse import ClickHouseStore
from watchkeeper.store.clickhouse_logs import ClickHouseLogStore


@pytest.fixture(name="chdb_url")
def _chdb_url(tmp_path: Path) -> str:
    """The session's chDB engine (one path per process)."""
    return chdb_url(tmp_path)


def test_an_unreachable_server_is_named_at_start() -> None:
    with pytest.raises(
        StoreError, match=r"cannot reach ClickHouse at http://u:\*\*\*@127\.0\.0\.1:9"
    ):
        ClickHouseStore("http://u:secret@127.0.0.1:9", database="x")


def test_a_url_of_another_kind_says_what_to_write() -> None:
    with pytest.raises(ValueError, match=r"use http\(s\)://HOST:8123"):
        ClickHouseStore("tcp://localhost:9000")


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ({"backend": "clickhouse"}, "needs store.clickhouse_url"),
        ({"backend": "clickhouse", "clickhouse_url": "localhost:8123"}, "not a ClickHouse address"),
        ({"clickhouse_database": "a-b"}, "store.clickhouse_database"),
    ],
)
def test_bad_clickhouse_settings_say_how(store: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(env={}, overrides={"store": store})


def test_the_config_file_selects_clickhouse(tmp_path: Path, chdb_url: str) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text(
        f"store:\n  backend: clickhouse\n  clickhouse_url: {chdb_url}\n"
        "  clickhouse_database: from_file\nretention:\n  days: 9\n"
    )
    store = open_store(load_config(path, env={}))
    try:
        assert isinstance(store, ClickHouseStore) and store.database == "from_file"
        (ddl,) = store.rows(
            Query(
                "SELECT create_table_query FROM system.tables "
                "WHERE database = 'from_file' AND name = 'spans'",
                {},
            )
        )[0]
        assert "toIntervalDay(9)" in ddl and "PARTITION BY toYYYYMMDD" in ddl
    finally:
        store.close()


def test_the_schema_is_migrated_once_and_reopened(chdb_url: str) -> None:
    data = generate("demo", 20)
    store = ClickHouseStore(chdb_url, database="reopened")
    assert store.version == schema.LATEST
    store.write(data.batch())
    store.close()
    again = ClickHouseStore(chdb_url, database="reopened")
    try:
        assert again.count("demo") == len(data.spans)
        versions = again.rows(Query("SELECT version FROM schema_version ORDER BY version", {}))
        assert versions == [(v,) for v, _, _ in schema.MIGRATIONS]  # once each, not on reopen
    finally:
        again.close()


def test_a_replay_racing_the_key_check_collapses_on_merge(chdb_url: str) -> None:
    """Two writers (replicas) storing the same span at once: both inserts land; the
    ReplacingMergeTree keeps one once parts merge."""
    data = generate("demo", 5)
    store = ClickHouseStore(chdb_url, database="raced")
    try:
        store.write(data.batch())
        store._insert("spans", spans_table(data.spans))  # what the other writer stored meanwhile
        assert store.count("demo") == 2 * len(data.spans)
        store._command("OPTIMIZE TABLE spans FINAL")
        assert store.count("demo") == len(data.spans)
        assert store.summary(SpanFilter("demo")).count == len(data.spans)
    finally:
        store.close()


def _printed(*args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "watchkeeper", "schema", "clickhouse", *args],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [s.strip() for s in out.split(";\n") if s.strip()]


def test_the_printed_schema_is_what_the_store_runs_on(chdb_url: str) -> None:
    """`watchkeeper schema clickhouse`, run by hand, makes the tables the store then uses."""
    import clickhouse_connect

    admin = clickhouse_connect.get_client(dsn=chdb_url)
    admin.command("CREATE DATABASE by_hand")
    client = clickhouse_connect.get_client(dsn=chdb_url, database="by_hand")
    for sql in _printed("--ttl-days", "9"):
        client.command(sql)
    client.close()
    admin.close()
    store = ClickHouseStore(chdb_url, database="by_hand")
    try:
        assert store.version == schema.LATEST
        now = time.time_ns() // MINUTE_NS * MINUTE_NS - 3600 * 10**9  # within the 9 days
        data = generate("demo", 10, start_ns=now)
        assert store.write(data.batch()) == len(data.spans)
        assert store.trace("demo", data.spans[0].trace_id) is not None  # the view filled traces
        old = generate("old", 10)  # 2023: past the TTL, its parts are dropped
        store.write(old.batch())
        store._command("OPTIMIZE TABLE spans FINAL")
        assert store.count("old") == 0 and store.count("demo") == len(data.spans)
    finally:
        store.close()
    logs = ClickHouseLogStore(chdb_url, database="by_hand")  # the log table too
    try:
        assert logs.version == clickhouse_logs.LATEST
        assert logs.write([LogRow("demo", "0" * 16, now, now, 9, "INFO", "by hand")]) == 1
        assert logs.count("demo") == 1
    finally:
        logs.close()


def test_the_cluster_schema_shards_every_table_by_trace(chdb_url: str) -> None:
    statements = _printed("--cluster", "prod", "--ttl-days", "9")
    tables = ["spans", "payloads", "scores", "traces", "trace_context"]
    for t in tables:
        local = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {t}_local ")]
        dist = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {t} ")]
        assert len(local) == len(dist) == 1, t
        assert "ON CLUSTER `prod`" in local[0] and "ENGINE = Replicated" in local[0]
        assert f"'/clickhouse/tables/{{shard}}/{{database}}/{t}_local', '{{replica}}'" in local[0]
        assert dist[0].endswith(
            f"Distributed('prod', currentDatabase(), '{t}_local', cityHash64(trace_id))"
        )
    for t in ("rollup", "totals_rollup", "user_rollup", "minute_rollup"):  # moved rows: any shard
        (dist,) = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {t} ")]
        assert dist.endswith(f"Distributed('prod', currentDatabase(), '{t}_local', rand())")
    views = sorted(s.split(" TO ")[1].split()[0] for s in statements if "MATERIALIZED VIEW" in s)
    (logs,) = [s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS logs ")]
    assert logs.endswith("Distributed('prod', currentDatabase(), 'logs_local', cityHash64(log_id))")
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS logs_local ON CLUSTER `prod`")
               and "ReplicatedReplacingMergeTree(" in s for s in statements)  # fmt: skip
    assert views == ["minute_rollup_local", "rollup_local", "totals_rollup_local",
                     "traces_local", "user_rollup_local"]  # fmt: skip
    assert all(" FROM spans_local " in s for s in statements if "MATERIALIZED VIEW" in s)
    assert not any(s.startswith(("INSERT", "TRUNCATE")) for s in statements)
    assert sum("MODIFY TTL" in s and "_local ON CLUSTER" in s for s in statements) == 9
    # the engine parses every statement (a cluster itself cannot run in one process)
    store = ClickHouseStore(chdb_url, database="parse_only")
    try:
        for sql in statements:
            assert store.rows(Query(f"EXPLAIN AST {sql}", {})), sql
    finally:
        store.close()
    bad = subprocess.run(
        [sys.executable, "-m", "watchkeeper", "schema", "clickhouse", "--cluster", "a b"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "cluster name 'a b'" in bad.stderr


def test_a_version_1_database_is_migrated_on_start_and_its_spans_rolled_up(
    chdb_url: str,
) -> None:
    """Version 1 (before the rollups), made by hand as that release made it, holding spans:
    opening it adds the rollups and rolls up what it holds, once."""
    import clickhouse_connect

    data = generate("old", 700, spacing_ns=4 * MINUTE_NS)  # 47 hours
    admin = clickhouse_connect.get_client(dsn=chdb_url)
    admin.command("CREATE DATABASE v1_by_hand")
    client = clickhouse_connect.get_client(dsn=chdb_url, database="v1_by_hand")
    client.command(schema.VERSION_DDL)
    for sql in schema.MIGRATIONS[0][2]:
        client.command(sql)
    client.command("INSERT INTO schema_version VALUES (1, 'by hand', 0)")
    client.insert_arrow("spans", spans_table(data.spans))
    client.close()
    admin.close()
    store = ClickHouseStore(chdb_url, database="v1_by_hand")
    raw = ClickHouseStore(chdb_url, database="v1_raw", use_rollup=False)
    try:
        assert store.version == schema.LATEST
        raw.write(data.batch())
        first = min(s.start_ns for s in data.spans)
        f = SpanFilter("old", first + 17 * MINUTE_NS, first + 46 * 60 * MINUTE_NS)
        assert store._rollup_for(f, None, percentiles=True) is not None
        assert store._rollup_for(f, "user", percentiles=False) is not None
        for _ in range(2):  # and again after a replay of every span: nothing rolled up twice
            same(store.summary(f), raw.summary(f))
            same_groups(store.breakdown(f, "user", percentiles=False),
                        raw.breakdown(f, "user", percentiles=False))  # fmt: skip
            assert store.write(data.batch()) == 0
    finally:
        store.close()
        raw.close()


@pytest.mark.parametrize("crashed_after", [0, 3, 4])
def test_a_version_2_database_gets_its_payloads_in_start_order(
    chdb_url: str, crashed_after: int
) -> None:
    """Version 2 (payloads ordered by trace) holding spans and payloads: opening it copies
    the payloads into start order, also when a start before ran the migration's first
    `crashed_after` statements only (after the exchange: the copy is in place, the old
    table beside it); every payload is there once, found by trace and by text."""
    import clickhouse_connect

    data = generate("old", 60)
    database = f"v2_by_hand_{crashed_after}"
    admin = clickhouse_connect.get_client(dsn=chdb_url)
    admin.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(dsn=chdb_url, database=database)
    client.command(schema.VERSION_DDL)
    for version, _, statements in schema.MIGRATIONS[:2]:
        for sql in statements:
            client.command(sql)
        client.command(f"INSERT INTO schema_version VALUES ({version}, 'by hand', 0)")
    client.insert_arrow("payloads", payloads_table(data.payloads, PayloadCodec()))
    client.insert_arrow("spans", spans_table(data.spans))
    for sql in schema.MIGRATIONS[2][2][:crashed_after]:
        client.command(sql)
    client.close()
    admin.close()
    store = ClickHouseStore(chdb_url, database=database)
    try:
        assert store.version == schema.LATEST
        tables = dict(store.rows(Query(
            "SELECT name, sorting_key FROM system.tables WHERE database = currentDatabase() "
            "AND name LIKE 'payloads%'", {},
        )))  # fmt: skip
        assert tables == {"payloads": schema.PAYLOADS_BY_START}
        assert store.rows(Query("SELECT count() FROM payloads", {})) == [(len(data.payloads),)]
        trace = store.trace("old", data.spans[0].trace_id)
        assert trace is not None
        assert sorted(trace.payloads.values(), key=lambda p: p.span_id) == sorted(
            (p for p in data.payloads if p.trace_id == data.spans[0].trace_id),
            key=lambda p: p.span_id,
        )
        found = store.search_spans(SpanFilter("old", text=NEEDLE), limit=1000).items
        want = {p.span_id for p in data.payloads if NEEDLE in (p.input or "")}
        assert {s.span_id for s in found} == want and want
    finally:
        store.close()


def test_a_database_of_a_newer_version_is_refused(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url, database="from_a_newer_release")
    store._command(f"INSERT INTO schema_version VALUES ({schema.LATEST + 1}, 'newer', 0)")
    store.close()
    with pytest.raises(StoreError, match=rf"version {schema.LATEST + 1}.*upgrade watchkeeper"):
        ClickHouseStore(chdb_url, database="from_a_newer_release")


def test_a_write_cut_short_is_rolled_up_again_at_the_next_start(chdb_url: str) -> None:
    """A crash after the spans of a write were stored and before its views rolled them up
    (ClickHouse has no transaction over both): the next start finds the write in the
    journal, unfinished, and rolls its hours up again from their spans; the replay of the
    batch then stores nothing twice."""
    data = generate("cut", 700, spacing_ns=4 * MINUTE_NS)
    first, second = data.spans[: len(data.spans) // 2], data.spans[len(data.spans) // 2 :]
    store = ClickHouseStore(chdb_url, database="cut_short", writer="w1")
    raw = ClickHouseStore(chdb_url, database="cut_short_raw", use_rollup=False)
    raw.write(data.batch())
    store.write(SpanBatch(first))
    # the write of `second`, up to its spans insert, where the process dies (the views are
    # detached for it: the spans' part committed, the rollups' not)
    store._journal({s.start_ns // 3600 // 10**9 * 3600 * 10**9 for s in second})
    views = [f"{t.name}_view" for t in schema.ROLLUPS]
    for view in views:
        store._command(f"DETACH TABLE {view}")
    store._insert("spans", spans_table(second))
    for view in views:
        store._command(f"ATTACH TABLE {view}")
    f = SpanFilter("cut", data.spans[0].start_ns + 17 * MINUTE_NS, data.spans[-1].start_ns)
    assert store.summary(f).count < raw.summary(f).count  # the rollups missed them
    again = ClickHouseStore(chdb_url, database="cut_short", writer="w1")  # not closed: died
    try:
        assert again.repaired > 0
        same(again.summary(f), raw.summary(f))
        assert again.write(SpanBatch(second)) == 0  # the spool's replay: already stored
        same(again.summary(f), raw.summary(f))
        same_groups(again.breakdown(f, "user", percentiles=False),
                    raw.breakdown(f, "user", percentiles=False))  # fmt: skip
        again.close()
        reopened = ClickHouseStore(chdb_url, database="cut_short", writer="w1")
        assert reopened.repaired == 0  # stopped cleanly: nothing to repair
        reopened.close()
    finally:
        for s in (store, raw):  # (the one that "died" too: the engine is the session's)
            s.close()
