"""Real Prometheus exporters for the tests: Debian's node, PostgreSQL and Redis exporters (and
a Redis server for the last), started on loopback ports and stopped at the end of the session.

`scripts/setup.sh dev` installs the packages. The node exporter runs with a narrow set of
collectors (CPU, memory, filesystems, disks, network, load): the others read files of the
host that a container may not have and only add series. The PostgreSQL exporter reads the
test session's private server (`tests._postgres`); the Redis exporter reads a Redis server
of its own, without persistence and with a `maxmemory`, so memory-versus-limit has a limit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests._ports import worker_port

# the metrics UI's tests' range is 19300-19399 (four ports per xdist worker: `worker_port`);
# another session on the machine picks another
BASE_PORT = worker_port(int(os.environ.get("WATCHKEEPER_TEST_EXPORTER_PORT", "19300")))
NODE_COLLECTORS = ("cpu", "meminfo", "filesystem", "diskstats", "netdev", "loadavg")
REDIS_MAXMEMORY = 64 * 1024 * 1024


def _binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RuntimeError(
            f"{name} is not installed: scripts/setup.sh dev installs Debian's {name}"
        )
    return found


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 20) -> None:
    """Wait until `url` answers 200, or fail with the process's log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up ({proc.args[0]}): {log.read_text()[-2000:]}")


@dataclass
class Exporters:
    """The running exporters: `targets` names each one's host:port for a scrape job."""

    postgres_port: int
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wk-exporters-")))
    targets: dict[str, str] = field(default_factory=dict)
    redis_port: int = BASE_PORT + 2
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Path:
        log = self.dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self._procs.append(proc)
        return log

    def _exporter(
        self, name: str, port: int, cmd: list[str], env: dict[str, str] | None = None
    ) -> None:
        log = self._spawn(name, cmd, env)
        _wait_http(f"http://127.0.0.1:{port}/metrics", self._procs[-1], log)
        self.targets[name] = f"127.0.0.1:{port}"

    def start(self) -> Exporters:
        """Start Redis, then the three exporters; each answers /metrics when this returns."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        node, pg, redis_exp = BASE_PORT, BASE_PORT + 1, BASE_PORT + 3
        collectors = [f"--collector.{c}" for c in NODE_COLLECTORS]
        self._exporter("node", node, [_binary("prometheus-node-exporter"),
                       f"--web.listen-address=127.0.0.1:{node}", "--collector.disable-defaults",
                       *collectors])  # fmt: skip
        dsn = f"postgresql://wk@127.0.0.1:{self.postgres_port}/postgres?sslmode=disable"
        pg_cmd = [_binary("prometheus-postgres-exporter"), f"--web.listen-address=127.0.0.1:{pg}"]
        self._exporter("postgres", pg, pg_cmd, {"DATA_SOURCE_NAME": dsn})
        self._redis()
        self._exporter("redis", redis_exp, [_binary("prometheus-redis-exporter"),
                       "-redis.addr", f"redis://127.0.0.1:{self.redis_port}",
                       "-web.listen-address", f"127.0.0.1:{redis_exp}"])  # fmt: skip

    def _redis(self) -> None:
        log = self._spawn("redis-server", [_binary("redis-server"), "--bind", "127.0.0.1",
                          "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
                          "--dir", str(self.dir), "--maxmemory", str(REDIS_MAXMEMORY)])  # fmt: skip
        deadline = time.monotonic() + 20
        while self.redis("PING") != "PONG":
            if time.monotonic() > deadline or self._procs[-1].poll() is not None:
                raise RuntimeError(f"redis-server did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def redis(self, *command: str) -> str:
        """Run one command with redis-cli; its answer ('' when the server is not up)."""
        out = subprocess.run(
            [_binary("redis-cli"), "-p", str(self.redis_port), *command],
            capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
        return out.stdout.strip()

    def stop(self) -> None:
        """Stop every process (exporters first, then Redis) and delete the directory."""
        for proc in reversed(self._procs):
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
