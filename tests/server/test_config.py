"""Configuration: file, then environment, then defaults; errors say how to fix the value."""

from __future__ import annotations

import subprocess
import sys
import time
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


def _bomb(levels: int = 9) -> str:
    """The "billion laughs": each level ten aliases of the one before (10**9 values)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nalerting:\n  rules: *a{levels}\n"


RULE = "alerting:\n  rules:\n    - {id: mine, kind: %s, window: 5m, threshold: %s}\n"
HOSTILE: list[tuple[str, bytes | str | None, str]] = [
    ("binary", bytes(range(256)) * 8, "is not UTF-8 text"),
    ("directory", None, "is a directory"),
    ("billion-laughs", _bomb(), "once its YAML aliases are expanded"),
    ("alias-cycle", "alerting: &x\n  rules: [*x]\n", "once its YAML aliases are expanded"),
    ("deep", "server: " + "[" * 50_000 + "]" * 50_000 + "\n", "YAML"),
    ("huge", "# " + "x" * 300_000 + "\n", "is larger than 256 KiB"),
    ("nul", "server:\n  port: 1\x00\n", "is not valid YAML"),
    (
        "first-user-rule",
        "alerting:\n  rules:\n    - {id: mine, kind: ratio}\n",
        "alerting.rules.0.kind",
    ),
    ("ratio-over-100", RULE % ("outcome_ratio", "150%"), "threshold 150% is not a share"),
    ("endless-window", (RULE % ("count", "1")).replace("5m", ".inf"), "ten years"),
    ("long-bad-value", "retention:\n  days: [" + "1, " * 5000 + "1]\n", "retention.days"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "content", "problem"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_serve_refuses_a_bad_config_in_one_line_fast(
    tmp_path: Path, case: str, content: bytes | str | None, problem: str
) -> None:
    path = tmp_path / f"{case}.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    cmd = [sys.executable, "-m", "watchkeeper", "serve", "--config", str(path)]
    cmd += ["--data-dir", str(tmp_path / "data"), "--port", "0"]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 600, done.stderr[:2000]
    assert lines[0].startswith(f"watchkeeper: config file {path}"), lines[0]
    assert problem in lines[0]
    assert took < 20, f"{took:.1f} s"
