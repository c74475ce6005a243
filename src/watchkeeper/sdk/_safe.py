"""Never break the host app: report an SDK failure once per kind, then carry on.

Under tests (`raise_errors=True` or `WATCHKEEPER_RAISE_ERRORS=1`) the failure is re-raised
instead, so a bug in the SDK fails the test that caused it rather than hiding in a log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

_log = logging.getLogger("watchkeeper.sdk")


class FailureReporter:
    """Logs the first failure of each kind and counts all of them."""

    def __init__(self, env_flag: str = "WATCHKEEPER_RAISE_ERRORS") -> None:
        self._env_flag = env_flag
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.raise_errors: bool | None = None  # None: follow the environment variable
        self.counter: Callable[[str], None] | None = None  # set by init to a metric

    def should_raise(self) -> bool:
        """Whether failures are re-raised (tests) rather than logged."""
        if self.raise_errors is not None:
            return self.raise_errors
        return os.environ.get(self._env_flag, "").strip().lower() in ("1", "true", "yes")

    def report(self, kind: str, exc: BaseException) -> None:
        """Record a failure of the SDK itself; re-raise only when raising is switched on."""
        if self.should_raise():
            raise exc
        counter = self.counter
        if counter is not None:
            with contextlib.suppress(Exception):  # counting must not fail the failure path
                counter(kind)
        with self._lock:
            first = kind not in self._seen
            self._seen.add(kind)
        if first:
            _log.warning(
                "watchkeeper SDK: %s failed (%s: %s); carrying on, further failures of this "
                "kind are counted in watchkeeper_sdk_errors_total but not logged",
                kind,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )

    def reset(self) -> None:
        """Forget which kinds were logged (used when the SDK is initialised again)."""
        with self._lock:
            self._seen.clear()


#: The process's reporter: the SDK, like OpenTelemetry's global provider, is process-wide.
REPORTER = FailureReporter()


def report_failure(kind: str, exc: BaseException) -> None:
    """Report a failure of the SDK (see `FailureReporter.report`)."""
    REPORTER.report(kind, exc)
