"""Shared fixtures and session hooks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (no browser download); one for the
    whole session (Playwright's sync API allows one instance per thread at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real webhook receiver on loopback (`tests.alerting._receiver`): what it got."""
    from tests.alerting._receiver import Receiver

    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A private PostgreSQL server for the session (`tests._postgres`), started on first use."""
    from tests._postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def exporters(postgres: Any) -> Iterator[Any]:
    """Debian's node, PostgreSQL (on `postgres`) and Redis exporters, and a Redis server, on
    loopback ports (`tests._exporters`); `.targets[name]` is each one's host:port."""
    from tests._exporters import Exporters

    running = Exporters(postgres.port).start()
    yield running
    running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def meta_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metadata database, on each engine the metadata store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.sqlite'}"
    url: str = request.getfixturevalue("postgres").new_database()
    return url


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the marker it adds must count
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `browser` every test that drives Chromium (it uses the `browser` fixture, however
    indirectly), and run those last: Playwright's sync API keeps its event loop running in the
    main thread for the rest of the session, and a later `asyncio.run()` refuses to start."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Silence the interpreter's shutdown once pytest has said everything.

    DuckDB 2.0's nanobind bindings print a screenful of "leaked functions" warnings while the
    interpreter shuts down, after pytest's summary. They are harmless (the OS reclaims the
    memory) but they bury the summary line that people and CI read. Standard error goes to
    /dev/null from here on; the shutdown itself still runs (atexit handlers, coverage data)
    and the exit status is pytest's.
    """
    if os.environ.get("WATCHKEEPER_TEST_NORMAL_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
