"""Opening a DuckDB file and lending cursors: what the span, log and metric stores share.

Each store keeps its own file (`spans`, `logs.duckdb`, `metrics.duckdb`); each opens it the
same way (settings, then the memory limit, then its migrations) and maps DuckDB's errors to
`StoreError` with the same words, so that an operator reads one kind of message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from watchkeeper.errors import StoreError, StoreOutOfMemory, ValidationError

_LOCKED_HINT = (
    " (DuckDB lets one process open the file: stop the other process using it,"
    " or query through its server)"
)


def memory_limit_sql(memory_limit_mb: int | None) -> str:
    """The statement that sets a memory limit (DuckDB's default, 80% of RAM, if None)."""
    if memory_limit_mb is None:
        return "RESET memory_limit"
    return f"SET memory_limit = '{int(memory_limit_mb)}MB'"


#: The name a file opened with a row group size has in its connection.
ATTACHED = "wk"
USE_FILE = f"USE {ATTACHED}"


def attached_cursor(con: Any) -> Any:
    """A new cursor of `con`, opened by `connect` with a row group size, whose default
    database is the file: a cursor starts in the connection's in-memory database, where
    the file's tables are not found by their bare names."""
    cur = con.cursor()
    try:
        cur.execute(USE_FILE)
    except BaseException:
        cur.close()
        raise
    return cur


def connect(
    path: Path | None,
    *,
    what: str,
    migrate: Callable[[Any], object],
    memory_limit_mb: int | None,
    settings: Sequence[str] = (),
    row_group_size: int | None = None,
) -> Any:
    """Open the file at `path` (in memory if None), apply `settings` and the memory limit,
    then `migrate` it. The limit comes before the migrations: a migration that copies a
    table spills to disk under it rather than growing with the table.

    `row_group_size`: the rows of each row group the tables' appends make from now on
    (DuckDB's default is 122,880). It is an option of ATTACH, not kept in the file: the file
    is attached as `ATTACHED` to an in-memory connection and made the default database of
    this connection; its cursors come from `attached_cursor`.

    Raises `StoreError` naming `what` and the file (and, when another process holds the
    file, what to do about it); the connection is closed when a step after it fails."""
    con = None
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if row_group_size is None:
            con = duckdb.connect(":memory:" if path is None else str(path))
        else:
            con = duckdb.connect(":memory:")
            where = ":memory:" if path is None else str(path).replace("'", "''")
            if path is not None:  # else it spills to ./.tmp, wherever the server was started
                con.execute(f"SET temp_directory = '{where}.tmp'")
            con.execute(f"ATTACH '{where}' AS {ATTACHED} (ROW_GROUP_SIZE {int(row_group_size)})")
            con.execute(USE_FILE)
        for statement in settings:
            con.execute(statement)
        con.execute(memory_limit_sql(memory_limit_mb))
        migrate(con)
    except (duckdb.Error, OSError) as exc:
        if con is not None:
            with suppress(duckdb.Error):
                con.close()
        hint = _LOCKED_HINT if "lock" in str(exc).lower() else ""
        raise StoreError(f"cannot open {what} {path}: {exc}{hint}") from exc
    return con


class Cursors:
    """A cursor per call on one connection (DuckDB does not share one between threads),
    its engine errors raised as `StoreError` naming the store.

    `bad_input`: when set, DuckDB's `InvalidInputException` (e.g. a user's regular
    expression it cannot compile) is the caller's error, a `ValidationError` with this
    text, rather than the store's."""

    def __init__(self, con: Any, *, what: str, bad_input: str | None = None) -> None:
        self.con = con
        self._what = what
        self._bad_input = bad_input
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        with self._lock:
            cur = self.con.cursor()
        try:
            yield cur
        except duckdb.InvalidInputException as exc:
            if self._bad_input is None:
                raise StoreError(f"{self._what}: {exc}") from exc
            raise ValidationError(f"{self._bad_input}: {exc}") from None
        except duckdb.Error as exc:
            raise engine_error(self._what, exc) from exc
        finally:
            cur.close()


class ReadGate:
    """The queries in flight on a store, counted, and a way to hold new ones back until
    none is: for a step that must run with no query beside it (closing the file; a
    checkpoint that should free the blocks it replaces, which DuckDB keeps while a query
    may still read them). One holder at a time: the stores hold it under their write lock."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reading = 0
        self._held = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Count a query in flight; wait first while the gate is held."""
        with self._cond:
            while self._held:
                self._cond.wait()
            self._reading += 1
        try:
            yield
        finally:
            with self._cond:
                self._reading -= 1
                self._cond.notify_all()

    @contextmanager
    def held(self, wait_s: float) -> Iterator[bool]:
        """Hold new queries back for the block; True when the queries in flight ended
        within `wait_s` (else they still run beside it)."""
        with self._cond:
            self._held = True
            deadline = time.monotonic() + wait_s
            while self._reading and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            quiet = not self._reading
        try:
            yield quiet
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()


def engine_error(what: str, exc: duckdb.Error) -> StoreError:
    """The store's error for a DuckDB error of the store `what`: running out of the memory
    it may use is `StoreOutOfMemory`, saying what to do (its cause keeps DuckDB's text)."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return StoreOutOfMemory(
            f"{what}: this request needs more memory than the store may use "
            "(store.memory_limit_mb): narrow its time range or its selection, or raise the limit"
        )
    return StoreError(f"{what}: {exc}")
