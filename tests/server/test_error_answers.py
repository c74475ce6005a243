"""Server errors answer `{"error": ...}` naming no internal path, query or engine text, with
an error id; the server logs the exception with its traceback under that id, once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from fastapi import Depends

from tests.server.conftest import Running
from watchkeeper.server._access import open_access
from watchkeeper.store.duckdb import DuckDBStore

_ID = re.compile(r"error id ([0-9a-f]{8})")


def _logged(caplog: pytest.LogCaptureFixture, error_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if error_id in r.getMessage()]


def _assert_answered_once(
    caplog: pytest.LogCaptureFixture, body: dict[str, str], *internals: str
) -> str:
    assert list(body) == ["error"]
    message = body["error"]
    for internal in internals:
        assert internal.lower() not in message.lower(), message
    found = _ID.search(message)
    assert found, message
    records = _logged(caplog, found.group(1))
    assert len(records) == 1 and records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None  # the traceback, server-side
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    return records[0].getMessage()


@pytest.mark.slow
def test_a_duckdb_error_reaches_no_answer(
    make_server: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    path = server.services.config.span_store_path
    # A real engine failure: the spans table gone from under the server's queries (renamed
    # through a cursor of the store's own database: the file is attached once per process).
    store = server.services.store
    assert isinstance(store, DuckDBStore)
    store._cursor().execute("ALTER TABLE spans RENAME TO spans_gone")
    caplog.set_level(logging.INFO)
    r = server.get("/api/v1/spans", params={"range": "1h"})
    assert r.status_code == 500
    logged = _assert_answered_once(
        caplog, r.json(), "spans_gone", "select", "catalog", "duckdb", str(path.parent)
    )
    assert "the store failed on this request" in r.json()["error"]
    assert "spans" in logged  # the engine's text is in the log, for the operator


@pytest.mark.slow
def test_an_unexpected_exception_answers_json_and_is_logged_once(
    make_server: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()

    def broken() -> None:
        raise RuntimeError("cannot read /var/lib/watchkeeper/secret.db: SELECT * FROM keys")

    server.app.add_api_route("/api/v1/broken", broken, dependencies=[Depends(open_access)])
    caplog.set_level(logging.INFO)
    r = server.get("/api/v1/broken")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"  # security headers still on
    logged = _assert_answered_once(caplog, r.json(), "/var/lib", "select", "RuntimeError")
    assert "SELECT * FROM keys" in logged
    assert server.get("/healthz").status_code == 200  # the server carries on
