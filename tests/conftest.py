"""Shared fixtures and session hooks."""

from __future__ import annotations

import os
import sys

import pytest

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
