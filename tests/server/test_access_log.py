"""Access logs are off by default (a terminal keeps the URL banner in view); a flag or
`server.access_log: true` turns them on (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.server._process import ServerProcess


def _access_lines(server: ServerProcess) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in server.output().splitlines() if x.startswith("{")]
    return [x for x in lines if x["logger"] == "uvicorn.access"]


@pytest.mark.parametrize(
    ("extra", "env", "logged"),
    [
        ((), {}, False),
        (("--access-log",), {}, True),
        ((), {"WATCHKEEPER_SERVER__ACCESS_LOG": "true"}, True),
    ],
    ids=["default", "flag", "config"],
)
@pytest.mark.slow
def test_access_log_is_off_unless_asked_for(
    tmp_path: Path, extra: tuple[str, ...], env: dict[str, str], logged: bool
) -> None:
    server = ServerProcess(tmp_path / "data", None, *extra, env=env).start()
    try:
        for _ in range(5):
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
    access = _access_lines(server)
    if logged:
        assert len([x for x in access if "/healthz" in str(x["message"])]) == 5, access
    else:
        assert access == []
        assert "watchkeeper listening" in server.output()  # the banner is still there
