"""Configuration: file, then environment, then defaults; errors say how to fix the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.config import load_config
from watchkeeper.errors import ConfigError


def test_defaults_listen_on_loopback_port_4318() -> None:
    config = load_config(env={})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 4318)
    assert config.span_store_path == Path("watchkeeper-data/spans.duckdb")


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text("server:\n  port: 5000\n  data_dir: /tmp/x\nretention:\n  days: 7\n")
    env = {"WATCHKEEPER_SERVER__PORT": "6000", "WATCHKEEPER_RETENTION__DAYS": "9"}
    config = load_config(path, env=env, overrides={"retention": {"days": 3}})
    assert config.server.port == 6000
    assert config.server.data_dir == Path("/tmp/x")
    assert config.retention.days == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server:\n  prot: 1\n", "server.prot: remove it or check its spelling"),
        ("server:\n  port: 99999\n", "server.port: Input should be less than or equal to 65535"),
        ("ingest:\n  max_body_bytes: -1\n", "ingest.max_body_bytes"),
        ("- a\n- b\n", "must hold a mapping"),
        ("server: [\n", "is not valid YAML"),
        ("prices:\n  - model: x\n    input: -1\n    output: 1\n", "prices.0.input"),
    ],
)
def test_bad_config_says_which_key_and_how(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert expected in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", env={})


def test_admin_token_comes_from_env_and_a_short_one_is_refused_unechoed() -> None:
    token = "a-long-enough-admin-token-0123"
    config = load_config(env={"WATCHKEEPER_AUTH__ADMIN_TOKEN": token})
    assert config.auth.admin_token is not None
    assert config.auth.admin_token.get_secret_value() == token
    assert token not in repr(config)
    assert load_config(env={"WATCHKEEPER_AUTH__ADMIN_TOKEN": ""}).auth.admin_token is None
    with pytest.raises(ConfigError) as info:
        load_config(env={"WATCHKEEPER_AUTH__ADMIN_TOKEN": "short-secret"})
    assert "auth.admin_token" in str(info.value) and "at least 24" in str(info.value)
    assert "short-secret" not in str(info.value)
