"""The guard's machinery: policy, one call's attempts/retries/fallbacks, and its telemetry.

Pure decisions (is an error retryable, how long to back off, which outcome) are functions;
`GuardCall` holds one call's state and records spans and metrics as it goes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import SpanKind

from watchkeeper.errors import CircuitOpen, ConfigError, GuardTimeout
from watchkeeper.model import conventions as c
from watchkeeper.sdk import _runtime
from watchkeeper.sdk._breaker import Breaker
from watchkeeper.sdk._context import report_to_request
from watchkeeper.sdk._guard_config import MAX_DEADLINE_S
from watchkeeper.sdk._safe import report_failure
from watchkeeper.sdk._span import (
    NOOP,
    ObservedSpan,
    open_span,
    record_exception,
    span_attributes,
)
from watchkeeper.sdk._workers import WORKERS, Workers

if TYPE_CHECKING:
    from watchkeeper.sdk._metrics import SdkMetrics

INTERNAL = SpanKind.INTERNAL
_FIRE_LOCK = threading.Lock()

_log = logging.getLogger("watchkeeper.sdk.guard")

# "auto" (inline until a call came close to its deadline) was the default: its first hang held
# the caller past the deadline. It is read as "thread", the default now.
SYNC_MODES = ("thread", "inline", "auto")
RetryOn = tuple[type[BaseException], ...] | Callable[[BaseException], bool] | None
# How many attempts a guarded call made, on its guard span when that is not one (like semconv's
# `http.request.resend_count`, set only on a resent request): absent means one attempt, and the
# common call pays for one attribute fewer. Only the SDK sets it and nothing on the server reads
# it yet, so it is not in `model.conventions` (next to WK_GUARD_ATTEMPT); nor are the guard's
# effective settings below, on every guard span next to `watchkeeper.guard.deadline_s`.
WK_GUARD_ATTEMPTS: Final = "watchkeeper.guard.attempts"
WK_GUARD_RETRIES: Final = "watchkeeper.guard.retries"
WK_GUARD_BACKOFF_S: Final = "watchkeeper.guard.backoff_s"
WK_GUARD_BREAKER_FAILURES: Final = "watchkeeper.guard.breaker.failure_threshold"
WK_GUARD_BREAKER_RESET_S: Final = "watchkeeper.guard.breaker.reset_timeout_s"
# The settings an operator's configuration changed (`_guard_config`), only when there are any.
WK_GUARD_OVERRIDDEN: Final = "watchkeeper.guard.overridden"


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """What happened to a guarded call, given to `on_timeout` / `on_fallback`."""

    name: str
    outcome: str  # timeout (on_timeout) or fallback (on_fallback)
    attempts: int
    elapsed_s: float
    deadline_s: float
    error: BaseException | None = None  # the last error of the primary call
    fallback: str | None = None  # which fallback answered


class GuardTelemetry:
    """A guard's labelled metric children and span attributes, built once per `init()`."""

    def __init__(self, metrics: SdkMetrics, policy: GuardPolicy) -> None:
        name, breaker = policy.name, policy.breaker
        self.metrics = metrics
        self.calls = metrics.guard.series(name, policy.deadline, breaker)
        self.retries = metrics.guard_retries.labels(name)
        self.span_name = f"guard {name}"
        # The outcome of a call that answers at once goes on with the start attributes (cheaper
        # there than set later); the call rewrites it only if it changes. The effective
        # settings are built here once: they cost the span's attribute check, nothing more.
        settings: dict[str, Any] = {
            c.WK_GUARD_NAME: name,
            c.WK_GUARD_DEADLINE_S: policy.deadline,
            WK_GUARD_RETRIES: policy.retries,
            WK_GUARD_BACKOFF_S: policy.backoff,
        }
        if breaker is not None:
            settings[WK_GUARD_BREAKER_FAILURES] = breaker.failure_threshold
            settings[WK_GUARD_BREAKER_RESET_S] = breaker.reset_timeout
        if policy.overridden:
            settings[WK_GUARD_OVERRIDDEN] = list(policy.overridden)
        settings[c.WK_OUTCOME] = "success"
        self.span_attrs = span_attributes(self.span_name, "guard", settings)
        self.attempt_name = f"guard {name} attempt"
        self.attempt_attrs = span_attributes(self.attempt_name, "other", {c.WK_GUARD_NAME: name})
        self.first_attempt_attrs = {**self.attempt_attrs, c.WK_GUARD_ATTEMPT: 1}


@dataclass(slots=True)
class Health:
    """A guard's mutable state: its telemetry handles (rebuilt after each `init()`)."""

    telemetry: GuardTelemetry | None = None


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """A guard's validated settings, plus the clock/sleep/random/threads it runs on."""

    name: str
    deadline: float = 8.0
    retries: int = 2
    retry_on: RetryOn = None
    backoff: float = 0.2
    fallbacks: tuple[Any, ...] = ()
    breaker: Breaker | None = None
    on_timeout: Callable[[GuardEvent], None] | None = None
    on_fallback: Callable[[GuardEvent], None] | None = None
    sync_mode: str = "thread"
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    workers: Workers = WORKERS
    overridden: tuple[str, ...] = ()  # settings the operator's configuration changed
    health: Health = field(default_factory=Health)
    # Derived from the above, read by every sync call (see `_guard._invoke_sync`).
    threaded: bool = field(init=False, repr=False, default=True)
    # The watchdog runs on real time: with an injected (test) clock, only the check on return.
    watchable: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        if not 0 < self.deadline < MAX_DEADLINE_S:
            raise ConfigError(
                f"guard {self.name!r}: deadline={self.deadline!r}; give seconds > 0 and < "
                f"{MAX_DEADLINE_S:g} (a guard answers, or falls back, within the request's time)"
            )
        if self.retries < 0 or self.backoff < 0:
            raise ConfigError(f"guard {self.name!r}: retries and backoff must be >= 0")
        if self.sync_mode not in SYNC_MODES:
            raise ConfigError(
                f'guard {self.name!r}: sync_mode={self.sync_mode!r}; use "thread" (the '
                'default: every call answered by its deadline) or "inline"'
            )
        object.__setattr__(self, "threaded", self.sync_mode != "inline")
        object.__setattr__(self, "watchable", self.clock is time.monotonic)


def _status_of(exc: BaseException) -> int | None:
    for holder in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "status"):
            value = getattr(holder, attr, None)
            if isinstance(value, int):
                return value
    return None


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds from a `Retry-After` header on the error's response (delta-seconds form)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        seconds = float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):  # an HTTP date or an odd headers object
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def is_retryable(exc: BaseException, retry_on: RetryOn = None) -> bool:
    """Timeouts, connection errors, HTTP 408/429/5xx; `retry_on` adds types or decides."""
    if callable(retry_on) and not isinstance(retry_on, tuple):
        return bool(retry_on(exc))
    if isinstance(retry_on, tuple) and isinstance(exc, retry_on):
        return True
    if isinstance(exc, GuardTimeout | CircuitOpen):
        return False
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    name = type(exc).__name__
    if "Timeout" in name or "Connect" in name:
        return True
    status = _status_of(exc)
    return status is not None and (status in (408, 429) or 500 <= status <= 599)


def backoff_delay(base: float, retry_index: int, rng: Callable[[], float]) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    step = base * (2.0**retry_index)
    return step / 2 + rng() * step / 2


def fallback_label(fallback: Any, index: int) -> str:
    """A readable name for a fallback (its function name, or "static:<i>")."""
    if callable(fallback):
        return str(getattr(fallback, "__qualname__", None) or f"fallback:{index}")
    return f"static:{index}"


def fire(callback: Callable[[GuardEvent], None] | None, event: GuardEvent) -> None:
    """Call an app callback; its exceptions are logged and swallowed (never our problem)."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        _log.exception("guard %r: the %s callback raised; ignored", event.name, event.outcome)


class GuardCall:
    """One call through a guard: its deadline, attempts, outcome, span and metrics.

    The guard span stands for attempt 1; attempts 2..n get spans of their own (see `_guard`).
    """

    # No __slots__: the flags below start as class attributes, so a call that answers at once
    # never sets them (each store is a cost on every guarded call).
    error: BaseException | None = None
    timed_out = False
    timeout_fired = False
    rejected = False
    ended = False  # the guard span

    def __init__(self, policy: GuardPolicy) -> None:
        self.p = policy
        self.t0 = policy.clock()
        self.end_at = self.t0 + policy.deadline
        self.attempts = 0
        self.rt = rt = _runtime._current
        self.span = NOOP
        self.tele: GuardTelemetry | None = None
        if rt is not None:
            try:
                tele = policy.health.telemetry
                if tele is None or tele.metrics is not rt.metrics:
                    tele = policy.health.telemetry = GuardTelemetry(rt.metrics, policy)
                # Not a request of its own even as a root: a guard wraps a dependency call, and
                # its outcome is its own (what guards beneath it report would not change it).
                self.span = open_span(
                    rt,
                    tele.span_name,
                    "guard",
                    tele.span_attrs,
                    INTERNAL,
                    None,
                    None,
                    True,
                    request=False,
                )
                self.tele = tele
            except Exception as exc:  # telemetry off for this call; the call itself goes on
                report_failure("guard.start", exc)

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.end_at - self.p.clock()

    def admit(self) -> bool:
        """Ask the breaker; a refused call is marked rejected."""
        breaker = self.p.breaker
        if breaker is not None and not breaker.allow():
            self.rejected = True
            self.error = CircuitOpen(f"guard {self.p.name!r}: circuit breaker is open")
            return False
        return True

    def next_attempt(self) -> tuple[ObservedSpan, float] | None:
        """Start the next attempt: its span handle and the seconds it has, or None: the
        deadline has passed.

        Attempt 1 runs under the guard span (the no-op handle: one span per call when the first
        attempt answers). A retry gets a span of its own, current, so the callee's spans nest
        under it.
        """
        left = self.end_at - self.p.clock()
        if left <= 0:
            self.mark_timeout()
            return None
        self.attempts += 1
        if self.attempts == 1 or self.tele is None:
            return NOOP, left
        return self._retry_span(self.tele), left

    def _retry_span(self, tele: GuardTelemetry) -> ObservedSpan:
        assert self.rt is not None  # telemetry implies a runtime
        rt = self.rt
        attrs = {**tele.attempt_attrs, c.WK_GUARD_ATTEMPT: self.attempts}
        try:
            return open_span(rt, tele.attempt_name, "other", attrs, INTERNAL, None, None, True)
        except Exception as exc:
            report_failure("guard.attempt", exc)
            return NOOP

    def attempt_failed(
        self, obs: ObservedSpan, exc: BaseException, can_retry: bool = True
    ) -> float | None:
        """Record a failed attempt; return the backoff before the next one, or None to stop.

        `can_retry` is False where the caller cannot run the work again (a `with` block).
        """
        ended_ns = time.time_ns()
        self.error = exc
        _end_attempt(obs, exc)
        delay = self._retry_delay(exc, can_retry)
        if self.attempts == 1 and self.tele is not None:
            self._first_attempt_failed(self.tele, exc, ended_ns, delay is not None)
        return delay

    def _first_attempt_failed(
        self, tele: GuardTelemetry, exc: BaseException, ended_ns: int, retrying: bool
    ) -> None:
        """Attempt 1 ran under the guard span. With a retry to follow, it becomes a span of its
        own after the fact, a sibling of the retries; else its error goes on the guard span."""
        guard_span = self.span.otel_span
        try:
            if not retrying:
                record_exception(guard_span, exc)
                return
            assert self.rt is not None  # telemetry implies a runtime
            obs = open_span(
                self.rt,
                tele.attempt_name,
                "other",
                tele.first_attempt_attrs,
                INTERNAL,
                None,
                None,
                False,
                parent=guard_span,
                start_time=getattr(guard_span, "start_time", None),  # attempt 1 began with it
            )
            _end_attempt(obs, exc, ended_ns)
        except Exception as failure:
            report_failure("guard.attempt", failure)

    def _retry_delay(self, exc: BaseException, can_retry: bool) -> float | None:
        """Feed the breaker; the backoff before the next attempt, or None: no retry."""
        breaker = self.p.breaker
        if isinstance(exc, CircuitOpen):  # refused without trying (all workers busy)
            self.rejected = True
        elif breaker is not None:
            breaker.record_failure()
        if isinstance(exc, GuardTimeout):
            self.mark_timeout()
            return None
        if not can_retry or self.attempts > self.p.retries:
            return None
        if not is_retryable(exc, self.p.retry_on):
            return None
        if breaker is not None and breaker.is_open():
            return None
        delay = backoff_delay(self.p.backoff, self.attempts - 1, self.p.rng)
        asked = retry_after_s(exc)  # the server said when to come back (429/503)
        if asked is not None:
            delay = max(delay, asked)
        if delay >= self.remaining():  # no time left for the wait and another try
            return None
        if self.tele is not None:
            self.tele.retries.inc()
        return delay

    def mark_timeout(self) -> None:
        """The deadline passed: say so at once (on_timeout), fallbacks may still answer."""
        if self.timed_out:
            return
        self.timed_out = True
        if not isinstance(self.error, GuardTimeout):
            cause = self.error
            self.error = GuardTimeout(f"guard {self.p.name!r}: deadline {self.p.deadline}s")
            self.error.__cause__ = cause
        self._fire_timeout()

    def overran(self) -> None:
        """The watchdog saw this inline call still running at its deadline (from its thread)."""
        self._fire_timeout()

    def _fire_timeout(self) -> None:
        with _FIRE_LOCK:  # the watchdog and the caller may both get here: fire once
            if self.timeout_fired:
                return
            self.timeout_fired = True
        fire(self.p.on_timeout, self.event("timeout"))

    def event(self, outcome: str, fallback: str | None = None) -> GuardEvent:
        """A GuardEvent describing this call so far."""
        return GuardEvent(
            self.p.name,
            outcome,
            self.attempts,
            self.p.clock() - self.t0,
            self.p.deadline,
            self.error,
            fallback,
        )

    def succeeded(self, obs: ObservedSpan, result: Any) -> Any:
        """The attempt `obs` answered in time: finish with outcome success."""
        if obs is not NOOP:
            obs.end()
        breaker = self.p.breaker
        if breaker is not None:
            breaker.record_success()
        self.finish("success")
        return result

    def fell_back(self, label: str, value: Any) -> Any:
        """A fallback answered: finish with outcome fallback."""
        self.span.set({c.WK_GUARD_FALLBACK: label})
        fire(self.p.on_fallback, self.event("fallback", label))
        report_to_request("fallback")
        self.finish("fallback")
        return value

    def fallback_failed(self, label: str, exc: BaseException) -> None:
        """A fallback raised: note it on the span and try the next one."""
        self.span.add_event("fallback_failed", fallback=label, error=type(exc).__qualname__)

    def failed(self) -> BaseException:
        """No answer at all: finish and return the exception to raise."""
        error = self.error or RuntimeError(f"guard {self.p.name!r} got no answer")
        if self.rejected:
            self.finish("rejected", "CircuitOpen")
        elif self.timed_out:
            report_to_request("timeout")
            self.finish("timeout", "GuardTimeout")
        else:
            self.finish("error", type(error).__qualname__)
        return error

    def finish(self, outcome: str, error_type: str | None = None) -> None:
        """End the guard span and record the guard metrics."""
        tele = self.tele
        if tele is None:
            return
        self.span.set_outcome(outcome, error_type)
        self._end_span()
        try:
            tele.calls.record(outcome, self.p.clock() - self.t0)
        except Exception as exc:
            report_failure("guard.metrics", exc)

    def abort(self, exc: BaseException) -> None:
        """A BaseException (cancellation, KeyboardInterrupt) went through: end the span."""
        if not self.ended:  # a failure `finish` ended raises through here too
            self._end_span(exc)

    def _end_span(self, error: BaseException | None = None) -> None:
        self.ended = True
        if self.attempts != 1:
            self.span.otel_span.set_attribute(WK_GUARD_ATTEMPTS, self.attempts)
        self.span.end(error)


def _end_attempt(obs: ObservedSpan, exc: BaseException, end_time: int | None = None) -> None:
    """End a failed attempt's span; our own deadline's error reads as outcome timeout."""
    if isinstance(exc, GuardTimeout):
        obs.set_outcome("timeout", "GuardTimeout")
    obs.end(exc, end_time)


def fallback_values(fallbacks: Sequence[Any]) -> list[tuple[str, Any]]:
    """Fallbacks with their labels, in order."""
    return [(fallback_label(fb, i), fb) for i, fb in enumerate(fallbacks)]
