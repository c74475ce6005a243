"""The metadata store (OLTP): SQLAlchemy Core on SQLite by default, PostgreSQL for replicas.

`store.meta_url` picks the engine: `sqlite:///PATH` (the default, in the data directory) or
`postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB` (psycopg 3, the `postgres` extra), which
replicas share. The same tables and the same statements run on both.

Every package that keeps metadata (keys, alert rules and state, silences, the notification
outbox, the review queue, the audit log) declares its tables on `METADATA` in its own module
and receives a `MetaStore` to run them; `MetaStore.create_all` creates whatever is missing.
A change writes through `MetaStore.transaction()`, which an enclosing block (the audit log's)
may hold open, so the change and its record commit together.

A column added to a table after the table first shipped is declared with `added_column`:
`create_all` adds it to databases made before it, each row taking the column's server
default (that default is the migration's decision, stated where the column is declared).
"""

from __future__ import annotations

import contextlib
import contextvars
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from watchkeeper.errors import StoreError

METADATA = sa.MetaData()
_ADDED_COLUMNS: list[sa.Column[Any]] = []
#: The transaction `MetaStore.transaction` has open in this context, and whose store it is.
_OPEN: contextvars.ContextVar[tuple[MetaStore, sa.Connection] | None] = contextvars.ContextVar(
    "watchkeeper_meta_transaction", default=None
)


def added_column(column: sa.Column[Any]) -> sa.Column[Any]:
    """Mark a column added after its table shipped; it needs a server default."""
    if column.server_default is None and not column.nullable:
        raise ValueError(f"added column {column.name} needs a server_default for existing rows")
    _ADDED_COLUMNS.append(column)
    return column


#: How long a SQLite connection waits for another one's lock before "database is locked".
_SQLITE_BUSY_S = 5.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_S * 1000)}")
        _wal_mode(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def _wal_mode(cur: sqlite3.Cursor) -> None:
    """Switch the database to WAL, waiting out a peer that holds its lock.

    On a new file, replicas (or a server and a CLI command) connecting together race to
    switch it; SQLite answers the loser "database is locked" at once, without its busy
    handler, so the loser waits and asks again (a no-op once the file is in WAL).
    """
    deadline = time.monotonic() + _SQLITE_BUSY_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


#: The PostgreSQL advisory lock that `create_all` holds ("wkmeta" in ASCII).
_MIGRATE_LOCK = 0x776B6D657461
#: Seconds to wait for PostgreSQL to accept a connection before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10


def masked(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<an unreadable URL>"


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite") and ":memory:" in url:
        return {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
    if url.startswith("postgresql"):
        # A pooled connection may outlive a PostgreSQL restart or failover: test it first.
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def _columns(conn: sa.Connection, table: sa.Table) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table.name)}


def _add_column(conn: sa.Connection, column: sa.Column[Any]) -> None:
    table = column.table
    if column.name in _columns(conn, table):
        return
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    name = conn.dialect.identifier_preparer.quote(table.name)
    conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {spec}"))


def _lock_for_migration(conn: sa.Connection) -> None:
    """Make this transaction the only one migrating: PostgreSQL's advisory lock; on SQLite
    the write lock, taken at once (the driver would begin only at the first row written,
    after the tables), which also makes the DDL and the rows it writes commit together."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class MetaStore:
    """An SQLAlchemy engine over the metadata database, with every table created."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, **_engine_options(url))
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.url = url

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed when the outermost block ends.

        A block opened inside another one (in the same context: thread or task) joins it, so
        a change and its audit entry commit together or not at all.
        """
        joined = _OPEN.get()
        if joined is not None and joined[0] is self:
            yield joined[1]
            return
        with self.engine.begin() as conn:
            token = _OPEN.set((self, conn))
            try:
                yield conn
            finally:
                _OPEN.reset(token)

    def create_all(self) -> None:
        """Create every table declared on METADATA that does not exist yet, and every column
        added since a table was made; StoreError naming the URL when the database cannot be
        reached.

        The whole migration is one transaction that holds a lock (`_lock_for_migration`):
        replicas (or a server and a CLI command) starting together migrate one after the
        other, and the second finds everything done.
        """
        self.ping()
        with self.engine.begin() as conn:
            _lock_for_migration(conn)
            METADATA.create_all(conn)
            for column in _ADDED_COLUMNS:
                _add_column(conn, column)

    def ping(self) -> None:
        """Ask the database for nothing; StoreError naming the URL when it does not answer."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: sa.exc.OperationalError) -> StoreError:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return StoreError(
            f"the metadata database {masked(self.url)} cannot be reached: {reason}; "
            "check store.meta_url, and that the database server runs and accepts this user"
        )

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()
