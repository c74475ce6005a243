"""A real PostgreSQL server for the tests: Debian's binaries, `initdb` into a temp dir.

`scripts/setup.sh dev` installs Debian's `postgresql` package; this starts a private server
from its binaries (never the system's cluster) on 127.0.0.1:PORT, with TCP only (no Unix
socket) and durability off (a test database is thrown away). PostgreSQL refuses to run as
root: under root (CI) the server runs as the `postgres` account the package creates, in a
directory it owns. Each test that wants a database asks `new_database()` for an empty one.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests._ports import worker_port

# the tests' range is 15400-15499 (a port per xdist worker: `worker_port`); sessions run side
# by side on one machine pick another
PORT = worker_port(int(os.environ.get("WATCHKEEPER_TEST_PG_PORT", "15432")))
SUPERUSER = "wk"


def bin_dir() -> Path:
    """Where Debian's PostgreSQL binaries are (the newest major version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: the metadata tests need Debian's postgresql "
            "package (scripts/setup.sh dev installs it)"
        )
    return Path(found[-1]).parent


def _major(path: str) -> int:
    return int(Path(path).parts[-3])


class PostgresServer:
    """One private PostgreSQL server; `start()`, `new_database()`, `stop()`."""

    def __init__(self, port: int = PORT) -> None:
        self.port = port
        self.bin = bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="wk-postgres-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._user = _run_as()
        self._names = itertools.count(1)

    def _run(self, *cmd: str) -> None:
        out = subprocess.run(
            [str(self.bin / cmd[0]), *cmd[1:]],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            **self._user,
        )
        if out.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stderr}{tail}")

    def start(self) -> PostgresServer:
        """initdb, then start the server and wait until it accepts connections."""
        if self._user:
            os.chown(self.dir, self._user["user"], self._user["group"])
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server (fast: running transactions are rolled back) and delete its files."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one of its databases."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; return its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with _admin(self.port) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `new_database`, ending the connections to it."""
        name = url.rpartition("/")[2]
        with _admin(self.port) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _admin(port: int) -> Any:
    import psycopg

    dsn = f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres"
    return psycopg.connect(dsn, autocommit=True)


def _run_as() -> dict[str, Any]:
    """subprocess arguments that run the server as `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root, and PostgreSQL refuses root: the `postgres` account that "
            "Debian's postgresql package creates is missing (scripts/setup.sh dev)"
        ) from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "cwd": "/"}
