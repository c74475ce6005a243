"""The metadata store (OLTP): SQLAlchemy Core on SQLite by default, PostgreSQL for replicas.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


class MetaStore:
    """An SQLAlchemy engine over the metadata database, with every table created."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite") and ":memory:" in url:
            kwargs["poolclass"] = sa.pool.StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine = sa.create_engine(url, **kwargs)
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
        added since a table was made."""
        METADATA.create_all(self.engine)
        for column in _ADDED_COLUMNS:
            self._add_column(column)

    def _columns(self, table: sa.Table) -> set[str]:
        return {c["name"] for c in sa.inspect(self.engine).get_columns(table.name)}

    def _add_column(self, column: sa.Column[Any]) -> None:
        table = column.table
        if column.name in self._columns(table):
            return
        spec = sa.schema.CreateColumn(column).compile(dialect=self.engine.dialect)
        name = self.engine.dialect.identifier_preparer.quote(table.name)
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {spec}"))
        except sa.exc.DBAPIError:
            # Another process sharing this database may have added it first.
            if column.name not in self._columns(table):
                raise

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()
