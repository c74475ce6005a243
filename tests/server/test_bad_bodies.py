"""Bodies that once made the API fail with a 500 (found by the DAST scan, test_dast) get a
400 naming what is wrong, and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.server.conftest import Running
from watchkeeper.server._roles import Role

RULE = {"id": "r", "kind": "latency", "statistic": "p95", "threshold": 500, "window": "5m"}


@pytest.fixture
def editor(make_server: Callable[..., Running]) -> tuple[Running, str]:
    server = make_server()
    return server, server.services.keys.create("shop", "e", role=Role.EDITOR)[1]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/v1/silences", {"matchers": ["a=b"], "duration": "1h", "starts_at": "x"},
         "starts_at='x' is not a time"),
        ("/api/v1/silences", {"matchers": ["a=b"], "duration": "1h", "starts_at": [1]},
         "is not a time"),
        ("/api/v1/silences", {"matchers": ["a=b"], "duration": {"h": 1}}, "silence duration"),
        ("/api/v1/silences", {"matchers": ["a=b"], "duration": [], "starts_at": True},
         "is not a time"),
        ("/api/v1/silences", '{"matchers": ["a=b"], "ends_at": Infinity}', "finite"),
        # found by the DAST scan: a finite but absurd time made a 74-digit integer of ms
        ("/api/v1/silences", {"matchers": ["a=b"], "starts_at": 0, "ends_at": 1e300},
         "between 1970 and 2262"),
        ("/api/v1/rules", '{"id": "r", "kind": "latency", "threshold": NaN}', "threshold"),
        ("/api/v1/rules/test", '{"id": "r", "kind": "latency", "threshold": Infinity}',
         "threshold"),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_a_bad_body_is_a_400_that_says_why(
    editor: tuple[Running, str], path: str, body: Any, says: str
) -> None:
    server, key = editor
    sent = {"content": body, "headers": {"content-type": "application/json"}}
    r = server.request("POST", path, key, **(sent if isinstance(body, str) else {"json": body}))
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]
    assert server.get("/api/v1/silences", key).json()["items"] == []
    assert [r["id"] for r in server.get("/api/v1/rules", key).json()["items"]].count("r") == 0
