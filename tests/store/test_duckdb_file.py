"""Opening a DuckDB file as every DuckDB store does (`store._duckdb_file`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.store.conftest import THE_DUCKDB_ENGINE
from watchkeeper.errors import StoreError, ValidationError
from watchkeeper.store import _duckdb_file
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.duckdb_logs import DuckDBLogStore
from watchkeeper.store.metrics import MetricsStore

DUCKDB_ONLY = THE_DUCKDB_ENGINE

_OPEN_IN_CHILD = """
import sys
from pathlib import Path
from watchkeeper.errors import StoreError
from watchkeeper.store import _duckdb_file
try:
    path = Path(sys.argv[1])
    _duckdb_file.connect(path, what="test store", migrate=print, memory_limit_mb=None).close()
except StoreError as exc:
    print(exc)
    sys.exit(3)
"""


def _open_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    """Open `path` from another process (DuckDB lets one process hold a file)."""
    return subprocess.run(
        [sys.executable, "-c", _OPEN_IN_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _limit_of(memory_limit_mb: int) -> str:
    con = duckdb.connect()
    con.execute(_duckdb_file.memory_limit_sql(memory_limit_mb))
    ((value,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
    con.close()
    return str(value)


def test_the_migrations_run_under_the_memory_limit_and_after_the_settings() -> None:
    seen: list[tuple[str, str]] = []

    def migrate(con: Any) -> None:
        seen.extend(
            con.execute(
                "SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')"
            ).fetchall()
        )

    con = _duckdb_file.connect(
        None,
        what="test store",
        migrate=migrate,
        memory_limit_mb=48,
        settings=["SET checkpoint_threshold = '3MiB'"],
    )
    con.close()
    assert seen == [(_limit_of(48), "3.0 MiB")]
    assert _limit_of(48) != _limit_of(4096)  # the check can tell two limits apart


@pytest.mark.parametrize(
    ("open_store", "file"),
    [
        (lambda p: DuckDBStore(p / "spans.duckdb", memory_limit_mb=40), "spans.duckdb"),
        (lambda p: DuckDBLogStore(p / "logs.duckdb", memory_limit_mb=40), "logs.duckdb"),
        (lambda p: MetricsStore(p / "metrics.duckdb", memory_limit_mb=40), "metrics.duckdb"),
    ],
    ids=["spans", "logs", "metrics"],
)
def test_each_store_holds_its_configured_limit(tmp_path: Path, open_store: Any, file: str) -> None:
    store = open_store(tmp_path)
    try:
        assert store._con.execute("SELECT current_setting('memory_limit')").fetchall() == [
            (_limit_of(40),)
        ]
    finally:
        store.close()
    assert (tmp_path / file).exists()


def test_a_failed_migration_says_which_file_and_lets_go_of_it(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"

    def migrate(con: Any) -> None:
        con.execute("SELECT * FROM no_such_table")

    with pytest.raises(
        StoreError, match=r"cannot open test store .*x\.duckdb: .*no_such_table"
    ) as caught:
        _duckdb_file.connect(path, what="test store", migrate=migrate, memory_limit_mb=None)
    # closed on the way out, not when the error is let go of (its traceback holds the
    # connection): another process can take the file while the error is still alive
    child = _open_in_child(path)
    assert caught.value.__cause__ is not None
    assert child.returncode == 0, child.stdout + child.stderr


def test_a_file_another_process_holds_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    con = _duckdb_file.connect(path, what="test store", migrate=print, memory_limit_mb=None)
    try:
        child = _open_in_child(path)
    finally:
        con.close()
    assert child.returncode == 3, child.stdout + child.stderr
    assert "cannot open test store" in child.stdout
    assert "stop the other process using it" in child.stdout


def test_cursors_name_the_store_and_tell_bad_input_from_the_engines_errors() -> None:
    con = duckdb.connect()
    strict = _duckdb_file.Cursors(con, what="test store")
    lenient = _duckdb_file.Cursors(con, what="test store", bad_input="bad pattern")
    bad_regex = "SELECT regexp_matches('a', '(')"

    with pytest.raises(ValidationError, match=r"^bad pattern: "), lenient() as cur:
        cur.execute(bad_regex)
    with pytest.raises(StoreError, match=r"^test store: "), strict() as cur:
        cur.execute(bad_regex)
    with pytest.raises(StoreError, match=r"^test store: .*no_such_table"), lenient() as cur:
        cur.execute("SELECT * FROM no_such_table")
    with strict() as cur:
        assert cur.execute("SELECT 42").fetchall() == [(42,)]
    con.close()


def test_a_file_attached_with_a_row_group_size_spills_beside_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # DuckDB's default for an in-memory connection: ./.tmp
    path = tmp_path / "data" / "spans.duckdb"
    con = _duckdb_file.connect(
        path, what="test store", migrate=print, memory_limit_mb=64, row_group_size=2048
    )
    try:
        (where,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
    finally:
        con.close()
    assert where == f"{path}.tmp"
