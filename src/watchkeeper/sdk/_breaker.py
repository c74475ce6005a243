"""A circuit breaker: a pure state machine over an injected clock.

closed → (failure_threshold consecutive failures) → open → (reset_timeout elapsed) →
half-open (up to half_open_max_calls trial calls) → closed on a success, open again on a failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from watchkeeper.errors import ConfigError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: Values of the `watchkeeper_guard_breaker_state` gauge.
BREAKER_STATES: dict[str, int] = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


class Breaker:
    """Circuit breaker shared by every guard call with the same name."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check(failure_threshold, reset_timeout, half_open_max_calls)
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        # The settings in code, which `configure` returns to for what it is not given.
        self._defaults = (failure_threshold, reset_timeout, half_open_max_calls)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0

    def configure(
        self,
        failure_threshold: int | None = None,
        reset_timeout: float | None = None,
        half_open_max_calls: int | None = None,
    ) -> None:
        """Change the thresholds (an operator's override); None: the one given in code.

        The state is kept: an open breaker stays open, under the new reset timeout.
        """
        ft, rt, hm = self._defaults
        ft = ft if failure_threshold is None else failure_threshold
        rt = rt if reset_timeout is None else reset_timeout
        hm = hm if half_open_max_calls is None else half_open_max_calls
        _check(ft, rt, hm)
        with self._lock:
            self.failure_threshold, self.reset_timeout, self.half_open_max_calls = ft, rt, hm

    # The closed breaker's common case (a call allowed, a success after successes) is read and
    # left without the lock: attribute reads are atomic, and a transition racing with it orders
    # the two events one way or the other, as the lock would.

    @property
    def state(self) -> str:
        """closed, open or half_open (an open breaker past its reset timeout reads half_open)."""
        if self._state is CLOSED:
            return CLOSED
        with self._lock:
            self._advance()
            return self._state

    def _advance(self) -> None:
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._state, self._trials = HALF_OPEN, 0

    def allow(self) -> bool:
        """Whether a call may go ahead now (a half-open breaker lets a few trials through)."""
        if self._state is CLOSED:
            return True
        with self._lock:
            self._advance()
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                return True
            return False

    def is_open(self) -> bool:
        """True while calls are being refused (without taking a half-open trial slot)."""
        with self._lock:
            self._advance()
            return self._state == OPEN

    def record_success(self) -> None:
        """A call succeeded: close the breaker and forget past failures."""
        if self._state is CLOSED and not self._failures:
            return
        with self._lock:
            self._state, self._failures, self._trials = CLOSED, 0, 0

    def record_failure(self) -> None:
        """A call failed: open after `failure_threshold` in a row, or at once when half-open."""
        with self._lock:
            self._advance()
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state, self._opened_at, self._trials = OPEN, self._clock(), 0


def _check(failure_threshold: int, reset_timeout: float, half_open_max_calls: int) -> None:
    if failure_threshold < 1 or half_open_max_calls < 1 or not reset_timeout > 0:
        raise ConfigError(
            "Breaker: failure_threshold and half_open_max_calls must be >= 1 and "
            f"reset_timeout > 0 (got {failure_threshold}, {half_open_max_calls}, "
            f"{reset_timeout})"
        )


class BreakerRegistry:
    """One default breaker per guard name (guards with the same name share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, Breaker] = {}

    def get(self, name: str) -> Breaker:
        """The breaker for `name`, created with default settings the first time."""
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._breakers[name] = Breaker()
            return breaker


#: Breakers of guards created with `breaker=True`: per name, process-wide, like the guards.
BREAKERS = BreakerRegistry()
