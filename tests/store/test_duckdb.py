"""What only the DuckDB backend promises: schema upgrades, reopening, readers beside a writer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from tests.datagen import generate
from tests.store.conftest import THE_DUCKDB_ENGINE
from watchkeeper.config import Config, IngestConfig, StoreConfig
from watchkeeper.model import SpanBatch
from watchkeeper.server.app import open_store
from watchkeeper.store import SpanFilter, _traces
from watchkeeper.store._arrow import payloads_table, spans_table
from watchkeeper.store._duckdb_schema import LATEST, MIGRATIONS, current_version, migrate
from watchkeeper.store._payload import PayloadCodec
from watchkeeper.store.duckdb import ROW_GROUP_SIZE, DuckDBStore

#: Why these store tests run on DuckDB only (tests/store/conftest.py).
DUCKDB_ONLY = THE_DUCKDB_ENGINE


def test_migrations_are_ordered_and_start_at_one() -> None:
    assert [v for v, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_a_version_1_file_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    data = generate("demo", 6)
    con = duckdb.connect(str(path))
    assert migrate(con, target=1) == 1  # the layout before the traces side table
    con.register("old_rows", spans_table(data.spans))
    con.execute("INSERT INTO spans SELECT * FROM old_rows")
    con.close()

    store = DuckDBStore(path)
    tid = data.spans[0].trace_id
    detail = store.trace("demo", tid)  # answered through the backfilled side table
    assert detail is not None and len(detail.spans) == sum(s.trace_id == tid for s in data.spans)
    assert store.write(data.batch()) == 0  # rows written before the upgrade still count
    store.close()
    con = duckdb.connect(str(path))
    assert current_version(con) == LATEST
    assert con.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST,)
    con.close()


def test_a_version_11_files_payloads_are_copied_into_the_latest_layout(
    tmp_path: Path,
) -> None:
    """Versions 12 and 13 copy `payloads` (DuckDB cannot alter a column's compression):
    every payload reads back as it was (its text a zstd frame, as every `io` then was), in
    its order, and the text and document columns are now compressed by zstd."""
    path = tmp_path / "v11.duckdb"
    data = generate("demo", 12)
    con = duckdb.connect(str(path))
    assert migrate(con, target=11) == 11
    for table, rows in (
        ("spans", spans_table(data.spans)),
        ("payloads", payloads_table(data.payloads, PayloadCodec())),
    ):
        con.register("old_rows", rows)
        con.execute(f"INSERT INTO {table} SELECT * FROM old_rows")
    con.execute(_traces.insert_sql("spans"))
    before = con.execute("SELECT * FROM payloads ORDER BY rowid").fetchall()
    con.close()

    store = DuckDBStore(path)
    tid = data.spans[0].trace_id
    detail = store.trace("demo", tid)
    assert detail is not None
    assert detail.payloads == {p.span_id: p for p in data.payloads if p.trace_id == tid}
    assert store.write(data.batch()) == 0  # the copied rows still count as stored
    store.close()
    con = duckdb.connect(str(path))
    assert current_version(con) == LATEST
    assert con.execute("SELECT * FROM payloads ORDER BY rowid").fetchall() == before
    kinds = con.execute(
        "SELECT DISTINCT column_name, compression FROM pragma_storage_info('payloads') "
        "WHERE column_name IN ('io', 'meta') AND segment_type = 'BLOB' ORDER BY 1"
    ).fetchall()
    assert kinds == [("io", "ZSTD"), ("meta", "ZSTD")]
    con.close()


def test_a_payload_copy_that_fails_part_way_leaves_version_11_as_it_was() -> None:
    """Version 12 is one transaction: a failure after the copy (a crash, here an error)
    leaves the old table and version; opening again copies anew."""
    con = duckdb.connect()
    assert migrate(con, target=11) == 11
    con.register("old_rows", payloads_table(generate("demo", 3).payloads, PayloadCodec()))
    con.execute("INSERT INTO payloads SELECT * FROM old_rows")
    before = con.execute("SELECT * FROM payloads ORDER BY rowid").fetchall()
    ((_, what, statements),) = [m for m in MIGRATIONS if m[0] == 12]
    failing = ((12, what, (*statements[:-1], "SELECT error('crash')")),)
    with pytest.raises(duckdb.Error, match="crash"):
        migrate(con, steps=failing)
    assert current_version(con) == 11
    assert con.execute("SELECT * FROM payloads ORDER BY rowid").fetchall() == before
    assert migrate(con) == LATEST
    assert con.execute("SELECT * FROM payloads ORDER BY rowid").fetchall() == before


def test_data_survives_reopening(tmp_path: Path) -> None:
    data = generate("demo", 20)
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write(data.batch())
    store.close()
    store = DuckDBStore(tmp_path / "s.duckdb")
    assert store.count("demo") == len(data.spans)
    assert store.write(data.batch()) == 0
    store.close()


@pytest.mark.slow
def test_readers_in_other_threads_see_whole_batches(tmp_path: Path) -> None:
    data = generate("demo", 400)
    batches = list(data.batches(101))
    totals = {0}
    for b in batches:
        totals.add(max(totals) + len(b))
    store = DuckDBStore(tmp_path / "s.duckdb")
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(store.summary(SpanFilter("demo")).count)
                store.search_spans(SpanFilter("demo"), limit=20)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for b in batches:
        store.write(b)
    done.set()
    for t in readers:
        t.join()
    assert not errors
    assert seen and set(seen) <= totals  # never half a batch
    assert store.count() == len(data.spans)
    store.close()


def test_a_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    code = (
        "import sys; from pathlib import Path\n"
        "from watchkeeper.errors import StoreError\n"
        "from watchkeeper.store.duckdb import DuckDBStore\n"
        "try:\n    DuckDBStore(Path(sys.argv[1]))\n"
        "except StoreError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(f"cannot open span store {path}")
    assert "stop the other process" in out.stdout
    store.close()


#: In a child process (a file size limit is the process's): a checkpoint that cannot write
#: (the size limit stands in for a full disk) is DuckDB's FATAL error, after which it refuses
#: every call; the store opens the database again, and the write, retried, lands.
_FATAL_THEN_RETRY = """
import os, resource, signal, sys
from pathlib import Path
from tests.datagen import generate
from watchkeeper.errors import StoreError
from watchkeeper.model import SpanBatch
from watchkeeper.store.duckdb import ROW_GROUP_SIZE, DuckDBStore

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, not the process
path = Path(sys.argv[1])
store = DuckDBStore(path)
data = generate("p", 300)
half = len(data.spans) // 2
assert store.write(SpanBatch(data.spans[:half], data.payloads)) == half
store._cursor().execute("SET checkpoint_threshold = '1KB'")  # the next commit checkpoints
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path), hard))
try:
    store.write(SpanBatch(data.spans[half:]))
except StoreError as exc:
    print("failed:", exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
print("reopened:", store.reopened)
print("rewritten:", store.write(SpanBatch(data.spans[half:])))
print("stored:", store.count("p"), "of", len(data.spans))
store.close()
"""


@pytest.mark.slow
def test_a_fatal_error_opens_the_database_again(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FATAL_THEN_RETRY, str(tmp_path / "s.duckdb")],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout.splitlines()
    # DuckDB's words depend on how the file is attached ("FATAL Error", or "Failed to
    # commit: Checkpoint failed ... File too large"): the store's are what count
    assert out[0].startswith("failed: span store failed, opened again: "), out
    assert out[1] == "reopened: 1"
    _, stored, _, total = out[3].split()
    assert int(out[2].split()[1]) > 0 and stored == total


def test_a_trace_is_found_whatever_the_form_of_its_id(tmp_path: Path) -> None:
    """`traces` is scanned by the id's first 64 bits; an id of another form is found too."""
    data = generate("p", 3)
    odd = [replace(s, trace_id="trace-from-elsewhere") for s in data.spans[:2]]
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write(SpanBatch(data.spans[:3]))
    store.write(SpanBatch(data.spans[3:] + odd))  # the first trace's spans over two writes
    for trace_id in {s.trace_id for s in data.spans} | {"trace-from-elsewhere"}:
        detail = store.trace("p", trace_id)
        assert detail is not None
        want = {s.span_id for s in data.spans + odd if s.trace_id == trace_id}
        assert {s.span_id for s in detail.spans} == want
    assert store.trace("p", "0" * 32) is None
    assert store.trace("p", "0x" + "1" * 30) is None
    store.close()


def _wal(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def _memory_limit(store: DuckDBStore) -> str:
    (limit,) = store._cursor().execute("SELECT current_setting('memory_limit')").fetchone()
    return str(limit)


def test_release_memory_empties_the_engine_cache_and_keeps_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "spans.duckdb"
    store = DuckDBStore(path, memory_limit_mb=256)
    data = generate("demo", 3000)
    store.write(data.batch())
    store.summary(SpanFilter(project="demo"))
    held = store.memory_bytes()
    assert held > 4 * 2**20 and _wal(path) > 0  # rows since the last checkpoint, in memory
    limit = _memory_limit(store)

    assert store.release_memory()

    assert store.memory_bytes() < held / 2
    assert _wal(path) == 0  # checkpointed: the rows are in the file
    assert _memory_limit(store) == limit == "244.1 MiB"  # 256 MB, as configured
    assert store.count("demo") == len(data.spans)  # everything still answers
    store.close()


def test_release_memory_waits_for_no_query_and_queries_wait_for_it(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "spans.duckdb", memory_limit_mb=256)
    store.write(generate("demo", 300).batch())
    with store._reading_query():  # a query in flight: the cache stays, try again later
        assert not store.release_memory()
    assert store.release_memory()

    answers: list[int] = []
    with store._gate.held(0.0):  # a release under way: a query arriving now waits for its end
        reader = threading.Thread(target=lambda: answers.append(store.count("demo")))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and not answers
    reader.join(10)
    assert answers == [sum(1 for _ in generate("demo", 300).spans)]
    store.close()


def test_the_file_is_opened_again_after_reopen_every_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB frees the metadata of the row groups it wrote only when it closes the file:
    after REOPEN_EVERY spans the store opens it again, once no query is in flight. A
    snapshot open then is not cut: the store tries again after a later write. Every span
    stays."""
    from watchkeeper.store import duckdb as wk_duckdb
    from watchkeeper.store._dialect import DUCKDB
    from watchkeeper.store._render import count_query

    monkeypatch.setattr(wk_duckdb, "REOPEN_EVERY", 1000)
    monkeypatch.setattr(wk_duckdb, "REOPEN_WAIT_S", 0.2)
    store = DuckDBStore(tmp_path / "s.duckdb")
    spans = generate("demo", 900).spans
    count = count_query("demo", DUCKDB)
    opened = store._generation
    store.write(SpanBatch(spans[:900]))
    assert store._generation == opened  # fewer than REOPEN_EVERY since it opened
    with store.snapshot():
        assert store.rows(count) == [(900,)]
        writer = threading.Thread(target=store.write, args=(SpanBatch(spans[900:1800]),))
        writer.start()
        writer.join(10)
        assert store.rows(count) == [(900,)]  # still the snapshot's state, on its cursor
    assert store._generation == opened  # the snapshot was in flight: not opened again
    store.write(SpanBatch(spans[1800:]))
    assert store._generation == opened + 1 and store._since_open == 0
    assert store.rows(count) == [(len(spans),)]
    store.close()


def test_a_snapshot_sees_one_state_of_the_data(tmp_path: Path) -> None:
    """Queries inside `snapshot()` (a trace's page, its payloads and its count) do not see
    a write that commits meanwhile; after it, they do."""
    from watchkeeper.store._dialect import DUCKDB
    from watchkeeper.store._render import count_query

    store = DuckDBStore(tmp_path / "s.duckdb")
    data = generate("demo", 20)
    half = len(data.spans) // 2
    store.write(SpanBatch(data.spans[:half]))
    count = count_query("demo", DUCKDB)
    with store.snapshot():
        assert store.rows(count) == [(half,)]  # the snapshot is taken at its first query
        writer = threading.Thread(target=store.write, args=(SpanBatch(data.spans[half:]),))
        writer.start()
        writer.join()
        assert store.rows(count) == [(half,)]
        assert store.trace("demo", data.spans[-1].trace_id) is None  # a nested one joins
    assert store.rows(count) == [(len(data.spans),)]
    assert store.trace("demo", data.spans[-1].trace_id) is not None
    store.close()


def test_the_span_tables_are_written_in_row_groups_of_their_own_size(tmp_path: Path) -> None:
    """A checkpoint that completes a row group compresses all of it with the writer waiting:
    the span store attaches its file with ROW_GROUP_SIZE (every cursor uses it), so that
    wait stays short (duckdb.ROW_GROUP_SIZE). A reader of the file sees every span."""
    data = generate("p", ROW_GROUP_SIZE * 3 // 4, spacing_ns=10**8)  # ~2.8 spans a trace
    assert len(data.spans) > 2 * ROW_GROUP_SIZE
    store = DuckDBStore(tmp_path / "s.duckdb")
    half = len(data.spans) // 2
    done = threading.Thread(target=store.write, args=(SpanBatch(data.spans[:half]),))
    done.start()  # the writer's cursor is another thread's: it uses the file too
    done.join()
    store.write(SpanBatch(data.spans[half:], data.payloads))
    store.close()
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    for table in ("spans", "payloads"):
        sizes = [n for (n,) in con.execute(
            f"SELECT max(count) FROM pragma_storage_info('{table}') GROUP BY row_group_id"
        ).fetchall()]  # fmt: skip
        assert max(sizes) == ROW_GROUP_SIZE and len(sizes) >= 2, (table, sizes)
    assert con.execute("SELECT count(*) FROM spans").fetchall() == [(len(data.spans),)]
    con.close()


def test_a_write_of_a_whole_row_group_skips_the_wal_and_ingest_writes_that_much(
    tmp_path: Path,
) -> None:
    """DuckDB writes an insert's whole row groups into the file's blocks, compressed; the
    rows of a smaller insert go to the WAL, then to the file again at the checkpoint
    (bench.ingest --growth 1: 23.9 us/span a write of 10,240 spans, 15.7 of 16,384).
    Ingest's batches are at least a row group, so the spans are written once."""
    data = generate("p", ROW_GROUP_SIZE * 3 // 8, spacing_ns=10**8)
    wal_bytes = []
    for n in (ROW_GROUP_SIZE - 2048, ROW_GROUP_SIZE):
        path = tmp_path / f"{n}.duckdb"
        store = DuckDBStore(path)
        assert store.write(SpanBatch(data.spans[:n])) == n
        wal_bytes.append(Path(f"{path}.wal").stat().st_size)
        store.close()
        con = duckdb.connect(str(path), read_only=True)
        assert con.execute("SELECT count(*) FROM spans").fetchall() == [(n,)]
        con.close()
    below, whole = wal_bytes
    assert whole * 3 < below, wal_bytes  # what is left in it: the rollups' and contexts' rows
    assert IngestConfig().batch_max_spans >= ROW_GROUP_SIZE


def _threads(store: DuckDBStore) -> int:
    (threads,) = store._cursor().execute("SELECT current_setting('threads')").fetchone()
    return int(threads)


def test_the_configured_threads_reach_the_engine_and_outlive_a_reopen(tmp_path: Path) -> None:
    config = Config.model_validate({"server": {"data_dir": str(tmp_path)}, "store": {"threads": 1}})
    store = open_store(config)
    assert isinstance(store, DuckDBStore)
    try:
        assert _threads(store) == 1
        store._open_again()  # as after a fatal error, or every REOPEN_EVERY spans
        assert _threads(store) == 1
    finally:
        store.close()
    unset = DuckDBStore(tmp_path / "other.duckdb")  # None: DuckDB's own, one per core
    assert _threads(unset) == os.cpu_count()
    unset.close()


def test_the_default_threads_are_half_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, threads in [(1, 1), (2, 1), (3, 1), (8, 4), (None, 1)]:
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert StoreConfig().threads == threads
