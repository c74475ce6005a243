"""The metadata store on each engine (SQLite, PostgreSQL): what replicas sharing it rely on.

Two `MetaStore`s on one database stand for two replicas; their writes race in threads.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.server._process import free_port
from tests.server.conftest import ADMIN_TOKEN
from watchkeeper.alerting import _repo as repo
from watchkeeper.alerting import parse_silence
from watchkeeper.config import load_config
from watchkeeper.errors import ConfigError, StoreError, ValidationError
from watchkeeper.server._audit import AuditLog
from watchkeeper.server._audit_actor import Actor, Origin
from watchkeeper.server._auth import KEY_CACHE_TTL_S, KeyRing
from watchkeeper.server._people import People
from watchkeeper.server._roles import Role
from watchkeeper.store.meta import MetaStore

T = TypeVar("T")


def _replicas(meta_url: str, n: int = 2) -> list[MetaStore]:
    stores = [MetaStore(meta_url) for _ in range(n)]
    for meta in stores:
        meta.create_all()  # each replica migrates at start; the second finds all done
    return stores


def _together(n: int, call: Callable[[int], T]) -> list[T]:
    """`call(i)` for i in range(n) in n threads released at once."""
    start = threading.Barrier(n)

    def run(i: int) -> T:
        start.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_replicas_starting_together_migrate_once(meta_url: str) -> None:
    stores = [MetaStore(meta_url) for _ in range(4)]
    _together(4, lambda i: stores[i].create_all())  # one migrates, the others wait, find it done
    AuditLog(stores[0]).record(Actor("cli", "ops"), Origin("local", "test"), "x", "y", None)
    assert AuditLog(stores[1]).verify().ok  # the chain's head row was made once
    for meta in stores:
        meta.close()


def test_a_key_revoked_on_one_replica_stops_working_on_the_other(meta_url: str) -> None:
    a_meta, b_meta = _replicas(meta_url)
    now = [0.0]
    a, b = KeyRing(a_meta, clock=lambda: now[0]), KeyRing(b_meta, clock=lambda: now[0])
    key, token = a.create("shop", "ci", role=Role.INGEST)
    assert b.principal_for(token) is not None  # made on a, known on b at once
    assert a.revoke(key.key_id)
    assert a.principal_for(token) is None  # the replica that revoked it: at once
    now[0] += KEY_CACHE_TTL_S  # b's cached answer lasts this long, no longer
    assert b.principal_for(token) is None
    for meta in (a_meta, b_meta):
        meta.close()


def test_people_and_roles_made_on_one_replica_are_known_to_the_other(meta_url: str) -> None:
    a_meta, b_meta = _replicas(meta_url)
    a, b = People(a_meta), People(b_meta)
    a.create("ada", "correct horse battery staple", actor="test")
    a.set_role("ada", "shop", Role.EDITOR, actor="test")
    person = b.authenticate("ada", "correct horse battery staple")
    assert person is not None and person.roles == {"shop": Role.EDITOR}
    with pytest.raises(ValidationError, match="is taken"):  # a unique violation on each engine
        b.create("ada", "another horse battery staple", actor="test")
    b.change("ada", disabled=True, actor="test")
    assert not a.any_active()
    for meta in (a_meta, b_meta):
        meta.close()


def test_only_one_of_racing_replicas_gets_the_lease(meta_url: str) -> None:
    stores = _replicas(meta_url, 4)
    taken = _together(4, lambda i: repo.acquire_lease(stores[i], "eval", f"r{i}", 100.0, 20.0))
    assert taken.count(True) == 1
    # Expired: again exactly one of them, whoever held it before.
    taken = _together(4, lambda i: repo.acquire_lease(stores[i], "eval", f"r{i}", 121.0, 20.0))
    assert taken.count(True) == 1
    for meta in stores:
        meta.close()


def test_audit_entries_from_two_replicas_keep_one_chain(meta_url: str) -> None:
    stores = _replicas(meta_url)
    logs = [AuditLog(meta) for meta in stores]
    who, where = Actor("cli", "ops@host"), Origin("local", "test")

    def record(i: int) -> int:
        entry = logs[i % 2].record(who, where, "rule.create", f"rule r{i}", "shop")
        return entry.seq

    seqs = _together(8, record)
    assert sorted(seqs) == list(range(1, 9))  # one number each, none twice
    assert logs[0].verify().ok and logs[1].verify().ok
    for meta in stores:
        meta.close()


def test_an_unreachable_postgresql_is_one_line_naming_the_url_without_its_password() -> None:
    url = f"postgresql+psycopg://wk:hunter2-pw@127.0.0.1:{free_port()}/meta"
    with pytest.raises(StoreError) as caught:
        MetaStore(url).create_all()
    message = str(caught.value)
    assert "hunter2" not in message
    assert f"wk:***@127.0.0.1:{url.split(':')[3].split('/')[0]}/meta" in message
    assert "cannot be reached" in message and "store.meta_url" in message


@pytest.mark.slow
def test_serve_says_so_and_exits_when_postgresql_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://wk:hunter2-pw@127.0.0.1:{free_port()}/meta"
    out = subprocess.run(
        [sys.executable, "-m", "watchkeeper", "serve", "--data-dir", str(tmp_path / "data")],
        env={"WATCHKEEPER_STORE__META_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) <= 3, out.stderr
    assert "cannot be reached" in out.stderr and "wk:***@127.0.0.1" in out.stderr
    assert "hunter2" not in out.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://wk:pw@db/wk", "'mysql' is not a metadata engine"),
        ("wk:hunter2@db/wk", "this URL is not a metadata engine"),
        ("postgresql://wk:hunter2@db:port/wk", "port is not a number"),
        ("postgresql+psycopg://wk:hunter2@db", "names a host and a database"),
    ],
)
def test_a_bad_meta_url_is_a_config_error_that_hides_the_url(url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(env={"WATCHKEEPER_STORE__META_URL": url})
    assert "hunter2" not in str(caught.value) and "store.meta_url" in str(caught.value)


def test_postgresql_without_a_driver_means_psycopg() -> None:
    config = load_config(env={"WATCHKEEPER_STORE__META_URL": "postgresql://wk@db:5432/wk"})
    assert config.meta_url == "postgresql+psycopg://wk@db:5432/wk"


def test_a_silence_author_longer_than_its_column_is_refused_on_every_engine() -> None:
    # PostgreSQL enforces VARCHAR(200) where SQLite stores anything: the model says it first.
    body = {"matchers": ["service=chat"], "ends_at": 2e9, "created_by": "x" * 201}
    with pytest.raises(ValidationError, match="created_by"):
        parse_silence(body)
    assert parse_silence({**body, "created_by": "x" * 200}).created_by == "x" * 200


def test_without_its_metadata_database_a_server_is_not_ready_and_asks_clients_to_retry(
    make_server: Callable[..., Any], postgres: Any
) -> None:
    url = postgres.new_database()
    server = make_server(store={"meta_url": url}, auth={"admin_token": ADMIN_TOKEN})
    assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
    postgres.drop_database(url)  # its connections end with it
    answer = httpx.get(server.url + "/readyz", timeout=30)
    assert answer.status_code == 503
    assert "the metadata database does not answer" in answer.json()["error"]
    assert "postgresql" not in answer.text  # the URL is for the log, not for anyone asking
    # A key cannot be checked: retry later (an OTLP exporter does on 503), not a 500.
    key = {"Authorization": "Bearer wk_not-yet-checked"}
    for method, path in (("GET", "/api/v1/traces?range=1h"), ("POST", "/v1/traces")):
        answer = httpx.request(method, server.url + path, headers=key, content=b"{}", timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert "the metadata database does not answer; retry" in answer.json()["error"]
