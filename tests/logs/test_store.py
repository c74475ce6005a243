"""The log store on both engines (DuckDB; ClickHouse on chDB): records in, found again by
every filter, text through each engine's access path (DuckDB's block filter, ClickHouse's
text index)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from tests.store.conftest import chdb_url
from watchkeeper.errors import ValidationError
from watchkeeper.ingest._logs_decode import log_id
from watchkeeper.model import LogRow
from watchkeeper.store import _duckdb_schema, duckdb_logs
from watchkeeper.store._dialect import Params
from watchkeeper.store._log_blocks import BITS, BLOCK_RECORDS
from watchkeeper.store.clickhouse_logs import ClickHouseLogStore
from watchkeeper.store.duckdb_logs import DuckDBLogStore
from watchkeeper.store.logs import LogFilter, LogStore, ServiceCount, Terms, step_for, words

T0 = 1_750_000_000_000_000_000
S = 1_000_000_000


def _row(i: int, body: str, severity: int = 9, **kw: object) -> LogRow:
    row = LogRow("p", "", T0 + i * S, T0 + i * S, severity, "", body, **kw)  # type: ignore[arg-type]
    return replace(row, log_id=log_id(i, body, kw))


def _rows() -> list[LogRow]:
    return [
        _row(0, "user signed in", service="auth"),
        _row(1, "Connection reset by peer", 17, service="api", trace_id="a" * 32, span_id="b" * 16),
        _row(2, "connection pool exhausted; retrying", 13, service="api"),
        _row(3, "reset the counter", service="worker",
             attributes=orjson.dumps({"http.route": "/x", "n": 7}).decode()),
        _row(4, "Zürich café ready", service="api"),
    ]  # fmt: skip


_DATABASES = itertools.count()
Open = Callable[[], LogStore]


@pytest.fixture(params=["duckdb", "clickhouse"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Opens the test's log store of each engine (again: the same file or database)."""
    opened: list[LogStore] = []
    database = f"logs{next(_DATABASES)}"

    def open_store() -> LogStore:
        if request.param == "duckdb":
            store: LogStore = DuckDBLogStore(tmp_path / "logs.duckdb")
        else:
            store = ClickHouseLogStore(chdb_url(tmp_path), database=database)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Open) -> LogStore:
    """A new, empty log store of each engine."""
    return opener()


def _ids(store: LogStore, **kw: object) -> list[int]:
    f = LogFilter("p", T0, T0 + 100 * S, **kw)  # type: ignore[arg-type]
    return [(r.time_ns - T0) // S for r in store.search(f).records]


def test_filters_find_what_they_say(opener: Open) -> None:
    store = opener()
    assert store.write(_rows()) == 5
    assert store.write(_rows()) == 0  # a replay stores nothing twice
    assert _ids(store) == [4, 3, 2, 1, 0]  # newest first
    assert _ids(store, services=("api",)) == [4, 2, 1]
    assert _ids(store, min_severity=13) == [2, 1]
    assert _ids(store, trace_id="a" * 32) == [1]
    assert _ids(store, attributes=(("http.route", "/x"),)) == [3]
    assert _ids(store, attributes=(("n", "7"),)) == [3]
    assert _ids(store, text=Terms.parse("reset")) == [3, 1]
    assert _ids(store, text=Terms.parse('"connection reset"')) == [1]
    assert _ids(store, text=Terms.parse("CONNECTION")) == [2, 1]
    assert _ids(store, text=Terms.parse("connect")) == []  # whole words
    assert _ids(store, text=Terms.parse("zürich")) == [4]
    assert _ids(store, text=Terms.parse("reset pool")) == []
    assert LogFilter("other", T0, T0 + S).project == "other"
    assert store.search(LogFilter("other", T0, T0 + 100 * S)).records == []
    store.close()
    again = opener()  # reopened: the blocks go on numbering
    assert again.write([_row(9, "later on")]) == 1
    assert _ids(again, text=Terms.parse("later")) == [9]
    assert again.count("p") == 6


def test_pages_visit_every_record_once(store: LogStore) -> None:
    store.write([_row(i // 3, f"line {i}") for i in range(50)])  # three per second
    seen: list[str] = []
    cursor = None
    while True:
        page = store.search(LogFilter("p", T0, T0 + 100 * S), limit=7, cursor=cursor)
        seen += [r.body for r in page.records]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(seen) == sorted(f"line {i}" for i in range(50))
    with pytest.raises(ValidationError):
        store.search(LogFilter("p", T0, T0 + S), cursor="1-x")


def test_the_block_filter_skips_blocks_without_the_words() -> None:
    store = DuckDBLogStore(None)
    for block in range(20):
        store.write([_row(block * 10 + i, f"routine message {block} {i}") for i in range(10)])
    store.write([_row(500, "rare needle here")])
    f = LogFilter("p", T0, T0 + 1000 * S, text=Terms.parse("needle"))
    p = Params(store.dialect)
    sql = store.blocks_sql(f, p)
    with store._cursor() as cur:
        blocks = cur.execute(sql, p.values).fetchall()
    assert len(blocks) == 1  # 1 of 21 blocks is read
    assert [r.body for r in store.search(f).records] == ["rare needle here"]


def test_the_block_filter_holds_every_word_of_its_bodies() -> None:
    store = DuckDBLogStore(None)
    unique = [f"w{i * 7919:x}q" for i in range(BLOCK_RECORDS)]  # bits all over the filter
    store.write([_row(i, f"line {word} ΣΑΣ") for i, word in enumerate(unique)])
    for word in [*unique[::16], "σας", "ΣΑΣ"]:  # any case variant of a word, final sigma too
        f = LogFilter("p", T0, T0 + 1000 * S, text=Terms.parse(word))
        p = Params(store.dialect)
        with store._cursor() as cur:
            assert cur.execute(store.blocks_sql(f, p), p.values).fetchall() == [(1,)], word
    assert (
        len(store.search(LogFilter("p", T0, T0 + 1000 * S, text=Terms.parse("σας"))).records) == 100
    )


def test_a_write_of_several_projects_makes_blocks_of_each() -> None:
    store = DuckDBLogStore(None)
    rows = [
        replace(_row(i, f"line {i} of {'pq'[i % 2]}"), project="pq"[i % 2]) for i in range(1200)
    ]
    assert store.write(rows) == 1200
    with store._cursor() as cur:
        blocks = cur.execute("SELECT project, records FROM log_blocks ORDER BY block").fetchall()
    assert blocks == [("p", BLOCK_RECORDS), ("p", 600 - BLOCK_RECORDS),
                      ("q", BLOCK_RECORDS), ("q", 600 - BLOCK_RECORDS)]  # fmt: skip
    for project in "pq":
        f = LogFilter(project, T0, T0 + 2000 * S, text=Terms.parse(f"of {project}"))
        assert store.count_matching(f) == 600
        f = LogFilter(project, T0, T0 + 2000 * S, text=Terms.parse("line 1198"))
        assert store.count_matching(f) == (project == "p")


def test_a_store_of_the_first_layout_gets_its_filters_recomputed(tmp_path: Path) -> None:
    path = tmp_path / "logs.duckdb"
    con = duckdb.connect(str(path))
    assert _duckdb_schema.migrate(con, target=1, steps=duckdb_logs.MIGRATIONS) == 1
    rows = pa.Table.from_pylist([asdict(_row(i, f"old line {i}")) for i in range(3)])
    con.register("old", rows)
    con.execute("INSERT INTO logs SELECT 1, * FROM old")  # block 1, its filter from another hash
    con.execute("INSERT INTO log_blocks VALUES (1, 'p', 0, 0, 3, " + ", ".join(["0"] * 256) + ")")
    con.close()
    store = DuckDBLogStore(path)
    assert _ids(store, text=Terms.parse("old")) == [2, 1, 0]
    assert store.write([_row(9, "new line")]) == 1  # the blocks go on numbering
    assert _ids(store, text=Terms.parse("line")) == [9, 2, 1, 0]
    store.close()


def test_a_store_of_the_second_layout_keeps_its_records_with_bodies_by_zstd(
    tmp_path: Path,
) -> None:
    path = tmp_path / "logs.duckdb"
    store = DuckDBLogStore(path)
    with store._cursor() as cur:  # the file as version 2 left it: bodies as DuckDB chose
        cur.execute("DROP TABLE logs")
        cur.execute(duckdb_logs.logs_ddl({}))
        cur.execute("DELETE FROM schema_version WHERE version = 3")
    rows = [_row(i, f"request {i} served in {i % 7} ms") for i in range(3 * BLOCK_RECORDS)]
    rows[5] = _row(5, "a needle among them")
    assert store.write(rows) == len(rows)
    store.close()

    store = DuckDBLogStore(path)  # upgraded when opened
    with store._cursor() as cur:
        cur.execute("CHECKPOINT")
        kinds = cur.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('logs') "
            "WHERE column_name = 'body' AND segment_type = 'VARCHAR'"
        ).fetchall()
        stored = cur.execute("SELECT block, log_id, body FROM logs").fetchall()
    assert kinds == [("ZSTD",)]
    assert [(i, b) for _, i, b in stored] == [(r.log_id, r.body) for r in rows]  # in order
    assert [b for b, _, _ in stored] == sorted(b for b, _, _ in stored)
    assert _ids(store, text=Terms.parse("needle")) == [5]
    assert store.write(rows[:10]) == 0  # stored once, whatever the layout they came in
    assert store.write([replace(_row(0, "after the copy"), log_id="new")]) == 1
    assert _ids(store, text=Terms.parse("copy")) == [0]
    store.close()


def test_a_large_write_makes_blocks_of_bounded_size() -> None:
    store = DuckDBLogStore(None)
    rows = [_row(i, f"routine message {i}") for i in range(2 * BLOCK_RECORDS + 100)]
    rows[-1] = _row(len(rows) - 1, "the last one holds a needle")
    assert store.write(rows) == len(rows)
    assert store.write(rows[-5:]) == 0  # stored already, whichever block holds them
    with store._cursor() as cur:
        blocks = cur.execute("SELECT records, min_ns, max_ns FROM log_blocks ORDER BY block")
        assert blocks.fetchall() == [
            (BLOCK_RECORDS, T0, T0 + (BLOCK_RECORDS - 1) * S),
            (BLOCK_RECORDS, T0 + BLOCK_RECORDS * S, T0 + (2 * BLOCK_RECORDS - 1) * S),
            (100, T0 + 2 * BLOCK_RECORDS * S, T0 + (len(rows) - 1) * S),
        ]
    f = LogFilter("p", T0, T0 + 10_000 * S, text=Terms.parse("needle"))
    p = Params(store.dialect)
    with store._cursor() as cur:
        assert len(cur.execute(store.blocks_sql(f, p), p.values).fetchall()) == 1
    assert [r.body for r in store.search(f).records] == ["the last one holds a needle"]
    assert store.count() == len(rows)


def test_the_histogram_counts_by_severity_range(store: LogStore) -> None:
    store.write(_rows())
    hist = store.histogram(LogFilter("p", T0, T0 + 10 * S), 2 * S)
    assert hist == [(T0, 9, 1), (T0, 17, 1), (T0 + 2 * S, 9, 1), (T0 + 2 * S, 13, 1),
                    (T0 + 4 * S, 9, 1)]  # fmt: skip
    assert step_for(T0, T0 + 10 * S, 2 * S) == 2 * S
    step = step_for(0, T0, S)  # since 1970 by the second: a step that gives 1,000 buckets
    assert step == 1_750_000 * S and T0 // step == 1000


def test_retention_drops_records_and_their_blocks(store: LogStore) -> None:
    store.write(_rows()[:2])
    store.write(_rows()[2:])
    assert store.delete_before("p", T0 + 2 * S) == 2
    assert _ids(store) == [4, 3, 2]
    assert _ids(store, text=Terms.parse("reset")) == [3]


def test_words_and_filter_bits() -> None:
    assert words("Hello, wörld! x_y 42") == ["hello", "wörld", "x_y", "42"]
    masks = DuckDBLogStore(None).masks(Terms.parse("a b c"))
    assert 3 <= sum(bin(m).count("1") for m in masks.values()) <= 9 < BITS
    with pytest.raises(ValidationError):
        Terms.parse('"..."')


def test_services_are_counted_in_the_range(store: LogStore) -> None:
    store.write(_rows())
    assert store.services(LogFilter("p", T0, T0 + 100 * S)) == [
        ServiceCount("api", 3), ServiceCount("auth", 1), ServiceCount("worker", 1)
    ]  # fmt: skip
    assert store.services(LogFilter("p", T0 + 2 * S, T0 + 100 * S, min_severity=13)) == [
        ServiceCount("api", 1)
    ]
    assert store.services(LogFilter("other", T0, T0 + 100 * S)) == []


def test_text_matches_words_between_any_punctuation(store: LogStore) -> None:
    store.write([
        _row(0, "“quoted” — dashes…and x_y keys"), _row(1, "ZÜRICH upper"),
        _row(2, "snake_case_word here"), _row(3, "tab\tseparated\nlines"),
    ])  # fmt: skip
    assert _ids(store, text=Terms.parse("quoted")) == [0]
    assert _ids(store, text=Terms.parse('"dashes and"')) == [0]
    assert _ids(store, text=Terms.parse("x_y")) == [0]
    assert _ids(store, text=Terms.parse("x")) == []  # x_y is one word
    assert _ids(store, text=Terms.parse("zürich")) == [1]
    assert _ids(store, text=Terms.parse("case")) == []
    assert _ids(store, text=Terms.parse("snake_case_word")) == [2]
    assert _ids(store, text=Terms.parse("separated")) == [3]
    assert store.count_matching(LogFilter("p", T0, T0 + 9 * S, text=Terms.parse("here"))) == 1


def test_the_text_index_answers_a_word_search(tmp_path: Path) -> None:
    store = ClickHouseLogStore(chdb_url(tmp_path), database=f"logs{next(_DATABASES)}")
    for block in range(5):
        store.write([_row(block * 10 + i, f"routine message {block} {i}") for i in range(10)])
    store.write([_row(500, "rare needle here")])
    f = LogFilter("p", T0, T0 + 1000 * S, text=Terms.parse("needle"))
    p = Params(store.dialect)
    plan = "\n".join(
        r[0]
        for r in store._rows(
            f"EXPLAIN indexes = 1 SELECT count() FROM logs WHERE {store._where(f, p)}", p.values
        )
    )
    assert "body_words" in plan  # the text index is asked
    assert [r.body for r in store.search(f).records] == ["rare needle here"]
    store.close()


def test_the_store_checkpoints_once_a_row_group_is_written(tmp_path: Path) -> None:
    """Its own checkpoint every `checkpoint_rows` records written (DuckDB's, every 16 MiB of
    WAL, rewrote each row group ~3 times): the WAL is emptied then, and nothing is lost."""
    path = tmp_path / "logs.duckdb"
    wal = path.with_name("logs.duckdb.wal")
    store = DuckDBLogStore(path, checkpoint_rows=1000)
    assert store.write([_row(i, f"first {i}") for i in range(600)]) == 600
    assert wal.exists() and wal.stat().st_size > 0
    assert store.write([_row(i, f"second {i}") for i in range(600, 1200)]) == 600
    assert not wal.exists() or wal.stat().st_size == 0
    store.close()
    again = DuckDBLogStore(path)
    assert again.count() == 1200
    again.close()


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_checkpoint_waits_for_the_searches_in_flight_and_new_ones_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB keeps the blocks a checkpoint replaces while a query may still read them and
    writes past them: checkpoints beside searches left a third of the file free. So the
    store's checkpoint waits for the searches in flight and holds new ones back until it
    is done; the records are there for every search either way."""
    monkeypatch.setattr(duckdb_logs, "CHECKPOINT_WAIT_S", 60.0)
    path = tmp_path / "logs.duckdb"
    store = DuckDBLogStore(path, checkpoint_rows=100)
    written: list[int] = []
    found: list[int] = []
    with store._gate.reading():  # a search in flight
        writer = threading.Thread(
            target=lambda: written.append(store.write([_row(i, f"w {i}") for i in range(200)]))
        )
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and _wal_bytes(path) > 0  # committed; its checkpoint waits
        search = threading.Thread(target=lambda: found.append(store.count()))
        search.start()
        search.join(0.3)
        assert search.is_alive() and not found  # a new search waits for the checkpoint
    writer.join(10)
    search.join(10)
    assert written == [200] and found == [200] and _wal_bytes(path) == 0
    store.close()


def test_a_search_longer_than_the_wait_does_not_hold_the_checkpoint_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duckdb_logs, "CHECKPOINT_WAIT_S", 0.2)
    path = tmp_path / "logs.duckdb"
    store = DuckDBLogStore(path, checkpoint_rows=100)
    with store._gate.reading():  # a search that outlasts the wait
        assert store.write([_row(i, f"w {i}") for i in range(200)]) == 200
        assert _wal_bytes(path) == 0  # checkpointed anyway
    assert store.count() == 200
    store.close()
