"""Guard decisions on a fake clock: retries, backoff inside the deadline, fallbacks, breaker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import watchkeeper
from watchkeeper import Breaker, CircuitOpen, GuardEvent, GuardTimeout
from watchkeeper.errors import ConfigError
from watchkeeper.model import OUTCOMES
from watchkeeper.model import conventions as c
from watchkeeper.sdk._guard_run import WK_GUARD_ATTEMPTS, backoff_delay, is_retryable

from .conftest import Sdk


class FakeClock:
    """Time that moves only when a call or a sleep says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class HttpError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class Response:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers


class WrappedHttpError(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, headers or {})


@dataclass
class Script:
    """A dependency that answers (or raises) per attempt, taking the given time."""

    clock: FakeClock
    steps: list[tuple[float, Any]]
    calls: int = 0

    def __call__(self, x: int) -> Any:
        duration, answer = self.steps[self.calls]
        self.calls += 1
        self.clock.now += duration
        if isinstance(answer, BaseException):
            raise answer
        return answer


@dataclass
class Case:
    id: str
    steps: list[tuple[float, Any]]
    expect: Any  # a value, or an exception type
    outcome: str
    attempts: int
    options: dict[str, Any] = field(default_factory=dict)
    sleeps: int = 0


def cached(x: int) -> str:
    return f"cached {x}"


def broken(x: int) -> str:
    raise RuntimeError("cache down")


CASES = [
    Case("first try", [(0.1, "ok")], "ok", "success", 1),
    Case("5xx then ok", [(0.1, HttpError(503)), (0.1, "ok")], "ok", "success", 2, sleeps=1),
    Case(
        "timeout error then ok",
        [(0.1, TimeoutError()), (0.1, "ok")],
        "ok",
        "success",
        2,
        sleeps=1,
    ),
    Case(
        "429 in .response",
        [(0.1, WrappedHttpError(429)), (0.1, "ok")],
        "ok",
        "success",
        2,
        sleeps=1,
    ),
    Case(
        "connection error then ok",
        [(0.1, ConnectionError()), (0.1, "ok")],
        "ok",
        "success",
        2,
        sleeps=1,
    ),
    Case("400 is not retried", [(0.1, HttpError(400))], HttpError, "error", 1),
    Case("ValueError is not retried", [(0.1, ValueError("bad"))], ValueError, "error", 1),
    Case("retries exhausted", [(0.1, HttpError(500))] * 3, HttpError, "error", 3, sleeps=2),
    Case(
        "retries exhausted, static fallback",
        [(0.1, HttpError(500))] * 3,
        "sorry",
        "fallback",
        3,
        {"fallbacks": ["sorry"]},
        sleeps=2,
    ),
    Case("late answer is a timeout", [(9.0, "late")], GuardTimeout, "timeout", 1),
    Case(
        "late answer, fallback chain",
        [(9.0, "late")],
        "cached 7",
        "fallback",
        1,
        {"fallbacks": [broken, cached, "never"]},
    ),
    Case(
        "backoff that does not fit stops retrying",
        [(0.5, HttpError(503))],
        HttpError,
        "error",
        1,
        {"deadline": 1.0, "backoff": 0.8},
    ),
    Case(
        "retry_on tuple adds a type",
        [(0.1, KeyError("k")), (0.1, "ok")],
        "ok",
        "success",
        2,
        {"retry_on": (KeyError,)},
        sleeps=1,
    ),
    Case(
        "retry_on callable decides",
        [(0.1, ConnectionError())],
        ConnectionError,
        "error",
        1,
        {"retry_on": lambda exc: False},
    ),
    Case("retries=0", [(0.1, HttpError(503))], HttpError, "error", 1, {"retries": 0}),
    Case(
        "Retry-After that fits is honoured",
        [(0.1, WrappedHttpError(429, {"retry-after": "2"})), (0.1, "ok")],
        "ok",
        "success",
        2,
        sleeps=1,
    ),
    Case(
        "Retry-After past the deadline stops retrying",
        [(0.1, WrappedHttpError(429, {"retry-after": "30"}))],
        WrappedHttpError,
        "error",
        1,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_guard_decisions(sdk: Sdk, case: Case) -> None:
    clock = FakeClock()
    script = Script(clock, case.steps)
    events: list[GuardEvent] = []
    options: dict[str, Any] = {"deadline": 8.0, "breaker": False, **case.options}
    guarded = watchkeeper.guard(
        "dep",
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 1.0,
        sync_mode="inline",
        on_timeout=events.append,
        on_fallback=events.append,
        **options,
    )(script)
    start = clock.now
    if isinstance(case.expect, type):
        with pytest.raises(case.expect):
            guarded(7)
    else:
        assert guarded(7) == case.expect
    assert script.calls == case.attempts
    assert len(clock.sleeps) == case.sleeps
    assert clock.now - start <= max(options["deadline"], sum(d for d, _ in case.steps))
    guard_span = sdk.span("guard dep")
    assert guard_span.attributes[c.WK_OUTCOME] == case.outcome  # type: ignore[index]
    assert guard_span.attributes[c.WK_OPERATION] == "guard"  # type: ignore[index]
    # Like semconv's `http.request.resend_count`, the count is there only when it is not 1.
    assert (WK_GUARD_ATTEMPTS in guard_span.attributes) == (case.attempts != 1)  # type: ignore[operator]
    assert guard_span.attributes.get(WK_GUARD_ATTEMPTS, 1) == case.attempts  # type: ignore[union-attr]
    _assert_attempt_spans(sdk, case, guard_span)
    assert (
        sdk.metric("watchkeeper_guard_calls_total", {"name": "dep", "outcome": case.outcome}) == 1
    )
    retries = sdk.metric("watchkeeper_guard_retries_total", {"name": "dep"}) or 0
    assert retries == case.sleeps
    kinds = [e.outcome for e in events]
    assert ("timeout" in kinds) == (case.outcome == "timeout" or "late" in case.id)
    assert ("fallback" in kinds) == (case.outcome == "fallback")


def _outcome_of(answer: Any) -> str:
    if isinstance(answer, TimeoutError):
        return "timeout"
    return "error" if isinstance(answer, Exception) else "success"


def _assert_attempt_spans(sdk: Sdk, case: Case, guard_span: ReadableSpan) -> None:
    """One attempt: the guard span alone (with the error). Retries: a child span per attempt."""
    attempts = [s for s in sdk.spans() if s.name == "guard dep attempt"]
    guard_events = [e.name for e in guard_span.events]
    if case.attempts == 1:
        assert attempts == []
        assert ("exception" in guard_events) == (case.outcome != "success")
        return
    assert [s.attributes[c.WK_GUARD_ATTEMPT] for s in attempts] == list(  # type: ignore[index]
        range(1, case.attempts + 1)
    )
    assert all(s.parent.span_id == guard_span.context.span_id for s in attempts)  # type: ignore[union-attr]
    answers = [answer for _, answer in case.steps[: case.attempts]]
    outcomes = [s.attributes[c.WK_OUTCOME] for s in attempts]  # type: ignore[index]
    assert outcomes == [_outcome_of(a) for a in answers]
    assert attempts[0].attributes[c.ERROR_TYPE] == type(answers[0]).__qualname__  # type: ignore[index]
    assert "exception" in [e.name for e in attempts[0].events]
    assert "exception" not in guard_events


def test_each_attempt_keeps_its_callee_spans_and_its_times(sdk: Sdk) -> None:
    clock = FakeClock()
    answers: list[Any] = [HttpError(503), HttpError(503), "ok"]

    def dep() -> str:
        with watchkeeper.observe("callee"):
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return str(answer)

    guarded = watchkeeper.guard(
        "nest", breaker=False, clock=clock, sleep=clock.sleep, rng=lambda: 0.0, sync_mode="inline"
    )(dep)
    assert guarded() == "ok"
    guard_span = sdk.span("guard nest")
    attempts = [s for s in sdk.spans() if s.name == "guard nest attempt"]
    callees = [s for s in sdk.spans() if s.name == "callee"]
    assert [s.attributes[c.WK_GUARD_ATTEMPT] for s in attempts] == [1, 2, 3]  # type: ignore[index]
    # Attempt 1's callee stays under the guard span; a retry's callee nests under its attempt.
    assert [s.parent.span_id for s in callees] == [  # type: ignore[union-attr]
        guard_span.context.span_id,
        attempts[1].context.span_id,
        attempts[2].context.span_id,
    ]
    # Attempt 1 was recorded after the fact with the times it ran: around its callee, inside
    # the guard span, before attempt 2.
    first = attempts[0]
    assert guard_span.start_time <= first.start_time <= callees[0].start_time  # type: ignore[operator]
    assert callees[0].end_time <= first.end_time <= attempts[1].start_time  # type: ignore[operator]
    assert attempts[2].end_time <= guard_span.end_time  # type: ignore[operator]


def test_retry_after_sets_the_wait() -> None:
    clock = FakeClock()
    script = Script(clock, [(0.1, WrappedHttpError(429, {"Retry-After": "1.5"})), (0.1, "ok")])
    guarded = watchkeeper.guard(
        "ra", breaker=False, clock=clock, sleep=clock.sleep, rng=lambda: 0.0, sync_mode="inline"
    )(script)
    assert guarded(1) == "ok"
    assert clock.sleeps == [1.5]


def test_backoff_grows_and_stays_inside_the_deadline() -> None:
    clock = FakeClock()
    script = Script(clock, [(0.01, HttpError(503))] * 5 + [(0.01, "ok")])
    guarded = watchkeeper.guard(
        "b", deadline=5.0, retries=5, backoff=0.2, breaker=False, clock=clock, sleep=clock.sleep,
        rng=lambda: 0.5, sync_mode="inline",
    )(script)  # fmt: skip
    assert guarded(1) == "ok"
    assert clock.sleeps == pytest.approx([0.15, 0.3, 0.6, 1.2, 2.4])
    assert backoff_delay(1.0, 0, lambda: 0.0) == 0.5
    assert backoff_delay(1.0, 0, lambda: 1.0) == 1.0


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (type("APIConnectionError", (Exception,), {})(), True),
        (type("ReadTimeout", (Exception,), {})(), True),
        (HttpError(429), True),
        (HttpError(408), True),
        (HttpError(502), True),
        (HttpError(404), False),
        (WrappedHttpError(500), True),
        (ValueError(), False),
        (GuardTimeout(), False),
        (CircuitOpen(), False),
    ],
)
def test_retryable_errors(exc: BaseException, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


@pytest.mark.parametrize("deadline", [0, -1, 10, 12.5])
def test_deadline_must_be_between_0_and_10(deadline: float) -> None:
    with pytest.raises(ConfigError, match="deadline"):
        watchkeeper.guard("x", deadline=deadline)


@pytest.mark.parametrize(
    ("events", "state"),
    [
        ([], "closed"),
        (["fail"] * 2, "closed"),
        (["fail"] * 3, "open"),
        (["fail", "fail", "ok", "fail", "fail"], "closed"),
        (["fail"] * 3 + ["wait"], "half_open"),
        (["fail"] * 3 + ["wait", "ok"], "closed"),
        (["fail"] * 3 + ["wait", "fail"], "open"),
        (["fail"] * 3 + ["wait", "fail", "wait"], "half_open"),
    ],
)
def test_breaker_states(events: list[str], state: str) -> None:
    clock = FakeClock()
    breaker = Breaker(failure_threshold=3, reset_timeout=30.0, clock=clock)
    actions: dict[str, Callable[[], None]] = {
        "fail": breaker.record_failure,
        "ok": breaker.record_success,
        "wait": lambda: clock.sleep(30.0),
    }
    for event in events:
        actions[event]()
    assert breaker.state == state


def test_half_open_lets_a_limited_number_of_trials_through() -> None:
    clock = FakeClock()
    breaker = Breaker(failure_threshold=1, reset_timeout=5.0, half_open_max_calls=2, clock=clock)
    breaker.record_failure()
    assert not breaker.allow()
    clock.sleep(5.0)
    assert [breaker.allow() for _ in range(3)] == [True, True, False]


def test_open_breaker_skips_to_fallbacks_or_rejects(sdk: Sdk) -> None:
    clock = FakeClock()
    breaker = Breaker(failure_threshold=2, reset_timeout=10.0, clock=clock)
    script = Script(clock, [(0.1, HttpError(500))] * 2 + [(0.1, "recovered")])
    options: dict[str, Any] = {"breaker": breaker, "retries": 0, "clock": clock}
    plain = watchkeeper.guard("svc", sync_mode="inline", **options)(script)
    with_fallback = watchkeeper.guard("svc", fallbacks=["cached"], **options)(script)
    for _ in range(2):
        with pytest.raises(HttpError):
            plain(1)
    assert breaker.state == "open"
    state = {"name": "svc"}
    assert sdk.metric("watchkeeper_guard_breaker_state", state) == 1
    with pytest.raises(CircuitOpen):
        plain(1)
    assert with_fallback(1) == "cached"
    assert script.calls == 2  # the open breaker kept the dependency out of it
    clock.sleep(10.0)
    assert sdk.metric("watchkeeper_guard_breaker_state", state) == 2  # read when scraped
    assert plain(1) == "recovered"
    assert breaker.state == "closed"
    assert sdk.metric("watchkeeper_guard_calls_total", {"name": "svc", "outcome": "rejected"}) == 1
    assert sdk.metric("watchkeeper_guard_calls_total", {"name": "svc", "outcome": "fallback"}) == 1
    assert sdk.metric("watchkeeper_guard_breaker_state", {"name": "svc"}) == 0


def test_breaker_true_shares_one_breaker_per_name() -> None:
    a = watchkeeper.guard("shared-name-test")
    b = watchkeeper.guard("shared-name-test")
    assert a.policy.breaker is b.policy.breaker is not None
    assert watchkeeper.guard("other-name-test").policy.breaker is not a.policy.breaker
    assert watchkeeper.guard("x", breaker=False).policy.breaker is None


def test_guard_duration_histogram_has_the_deadline_as_a_bucket(sdk: Sdk) -> None:
    clock = FakeClock()
    guarded = watchkeeper.guard("hist", deadline=2.5, clock=clock, sync_mode="inline")(
        Script(clock, [(2.4, "ok"), (0.01, "ok")])
    )
    guarded(1)
    guarded(1)
    labels = {"name": "hist", "le": "2.5"}
    assert sdk.metric("watchkeeper_guard_duration_seconds_bucket", labels) == 2
    assert sdk.metric("watchkeeper_guard_duration_seconds_bucket", {**labels, "le": "1.0"}) == 1
    assert sdk.metric("watchkeeper_guard_duration_seconds_count", {"name": "hist"}) == 2
    assert sdk.metric("watchkeeper_guard_duration_seconds_sum", {"name": "hist"}) == pytest.approx(
        2.41
    )
    # Every outcome is exposed from the first call on, at 0 until it happens (rates need it).
    calls = {
        o: sdk.metric("watchkeeper_guard_calls_total", {"name": "hist", "outcome": o})
        for o in OUTCOMES
    }
    assert calls == {"success": 2, "timeout": 0, "error": 0, "fallback": 0, "rejected": 0}
    exposition = generate_latest(sdk.registry).decode()
    families = {f.name: f.type for f in text_string_to_metric_families(exposition)}
    assert families["watchkeeper_guard_calls"] == "counter"
    assert families["watchkeeper_guard_duration_seconds"] == "histogram"


def test_callback_exceptions_are_swallowed(sdk: Sdk) -> None:
    clock = FakeClock()

    def explode(event: GuardEvent) -> None:
        raise RuntimeError("callback bug")

    guarded = watchkeeper.guard(
        "cb", clock=clock, sync_mode="inline", fallbacks=["fb"], on_timeout=explode,
        on_fallback=explode,
    )(Script(clock, [(9.0, "late")]))  # fmt: skip
    assert guarded(1) == "fb"


def test_guard_works_before_init() -> None:
    watchkeeper.shutdown()
    clock = FakeClock()
    guarded = watchkeeper.guard("pre", clock=clock, sync_mode="inline", fallbacks=["fb"])(
        Script(clock, [(9.0, "late")])
    )
    assert guarded(1) == "fb"


def test_an_async_fallback_for_a_sync_function_is_a_config_error() -> None:
    async def later() -> str:
        return "x"

    with pytest.raises(ConfigError, match="async"):
        watchkeeper.guard("mixed", fallbacks=[later])(lambda: "y")


def test_a_guard_is_a_dependency_call_not_a_request(sdk: Sdk) -> None:
    """Under a request span a guard's fallback marks the request; a guard with no request
    around it is not one itself: `context()` inside it tags the spans beneath, not the guard."""

    @watchkeeper.guard("dep", breaker=False, retries=0, fallbacks=["cached"])
    def dep(fail: bool) -> str:
        with watchkeeper.context(user_id="u1"), watchkeeper.observe("inner"):
            if fail:
                raise ConnectionError("down")
            return "fresh"

    with watchkeeper.observe("request"):
        assert dep(True) == "cached"
    assert sdk.span("request").attributes[c.WK_OUTCOME] == "fallback"  # type: ignore[index]
    sdk.exporter.clear()
    assert dep(False) == "fresh"  # a root guard
    guard_span = sdk.span("guard dep")
    assert guard_span.parent is None
    assert guard_span.attributes[c.WK_OUTCOME] == "success"  # type: ignore[index]
    assert c.USER_ID not in guard_span.attributes  # type: ignore[operator]
    assert sdk.span("inner").attributes[c.USER_ID] == "u1"  # type: ignore[index]
