"""The metadata store (OLTP): SQLAlchemy Core on SQLite by default, PostgreSQL for replicas.

Every package that keeps metadata (keys, alert rules and state, silences, the notification
outbox, the review queue, the audit log) declares its tables on `METADATA` in its own module
and receives a `MetaStore` to run them; `MetaStore.create_all` creates whatever is missing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

METADATA = sa.MetaData()


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

    def create_all(self) -> None:
        """Create every table declared on METADATA that does not exist yet."""
        METADATA.create_all(self.engine)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()
