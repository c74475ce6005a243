"""The listen-address rule, as a table: without auth the server listens on loopback only,
whatever `--host` says; with auth (a key, the admin token, `auth.required: true`) where it is
told. (test_keys_and_auth and test_revocation check the same on running processes.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import ADMIN_TOKEN
from watchkeeper.cli._commands import _auth_host
from watchkeeper.config import load_config
from watchkeeper.server._auth import KeyRing
from watchkeeper.server._roles import Role
from watchkeeper.store.meta import MetaStore

LOOPBACK = "127.0.0.1"


def _ring(tmp_path: Path, setup: str) -> tuple[Any, KeyRing]:
    auth: dict[str, Any] = {}
    if setup == "admin token":
        auth["admin_token"] = ADMIN_TOKEN
    if setup == "required":
        auth["required"] = True
    if setup == "not required, with a key":
        auth["required"] = False
    config = load_config(env={}, overrides={"server": {"data_dir": str(tmp_path)}, "auth": auth})
    meta = MetaStore(config.meta_url)
    meta.create_all()
    admin = config.auth.admin_token.get_secret_value() if config.auth.admin_token else None
    if "key" in setup:
        key, _ = KeyRing(meta).create("shop", role=Role.INGEST)
        if setup == "a revoked key":
            KeyRing(meta).revoke(key.key_id)
    return config, KeyRing(meta, config.auth.required, admin)


@pytest.mark.parametrize(
    ("host", "setup", "listens_on"),
    [
        ("0.0.0.0", "nothing", LOOPBACK),
        ("::", "nothing", LOOPBACK),
        ("192.0.2.10", "nothing", LOOPBACK),
        ("watchkeeper.example.com", "nothing", LOOPBACK),
        ("0.0.0.0", "a revoked key", LOOPBACK),
        ("0.0.0.0", "not required, with a key", LOOPBACK),
        ("localhost", "nothing", "localhost"),
        ("127.0.0.2", "nothing", "127.0.0.2"),
        ("::1", "nothing", "::1"),
        ("0.0.0.0", "a key", "0.0.0.0"),
        ("::", "a key", "::"),
        ("0.0.0.0", "admin token", "0.0.0.0"),
        ("0.0.0.0", "required", "0.0.0.0"),
    ],
)
def test_without_auth_the_server_listens_on_loopback_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, setup: str, listens_on: str
) -> None:
    config, keys = _ring(tmp_path, setup)
    config = config.model_copy(update={"server": config.server.model_copy(update={"host": host})})
    caplog.set_level(logging.WARNING, "watchkeeper.cli")
    assert _auth_host(config, keys) == listens_on
    if listens_on != host:
        assert f"listening on 127.0.0.1 only instead of {host}" in caplog.text
