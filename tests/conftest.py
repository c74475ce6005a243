"""Shared fixtures and session hooks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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


_status = {"exit": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember how the session ended, for `pytest_unconfigure`."""
    _status["exit"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done with it.

    DuckDB 2.0's nanobind bindings print a screenful of "leaked functions" warnings while the
    interpreter shuts down, after pytest's summary. They are harmless (the OS reclaims the
    memory) but they bury the summary line that people and CI read, so we skip the shutdown.
    """
    if os.environ.get("WATCHKEEPER_TEST_NORMAL_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["exit"])
