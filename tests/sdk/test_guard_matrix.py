"""The guard's promise, asserted: every call is answered (a result, a fallback or an error)
within its deadline plus a small scheduling margin, whatever the callee does.

The matrix: sync and async; a callee that succeeds, is slow but in time, answers late, hangs,
or fails; with and without `init()`; with and without a fallback; one caller, then many at
once. Only the promise is timed (lateness past the deadline), never the guard's overhead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

import watchkeeper
from watchkeeper import CircuitOpen, GuardTimeout
from watchkeeper.model import conventions as c

from .conftest import Sdk, start_sdk

DEADLINE = 0.2
# The promise: answered by the deadline plus a scheduling margin. On the shared 2-core machine
# at load 6-9 (four engineers' test suites) single calls, async ones too, were seen 53 ms late:
# the process waiting for a core, not the guard. `python -m bench.sdk` prints the worst lateness.
MARGIN = 0.1
KINDS = ("succeed", "slow", "late", "hang", "fail")
CALLS = 3  # per caller: the first hang of a healthy guard, then the guard's state after it
# What a caller may be answered with, by kind, with a fallback and without one. A guard's
# breaker opens after 5 failures: CircuitOpen is an answer too (given at once).
ANSWERS: dict[tuple[str, bool], tuple[Any, ...]] = {
    **{(k, fb): ("ok",) for k in ("succeed", "slow") for fb in (False, True)},
    **{(k, True): ("fb",) for k in ("late", "hang", "fail")},
    ("late", False): (GuardTimeout, CircuitOpen),
    ("hang", False): (GuardTimeout, CircuitOpen),
    ("fail", False): (ConnectionError, CircuitOpen),
}


@dataclass
class Answer:
    kind: str
    value: Any  # the result, or the exception's type
    seconds: float


class Callees:
    """The five kinds of callee, sync and async; `release()` ends every hang."""

    def __init__(self) -> None:
        self.hung = threading.Event()
        self.ahung: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def sync(self, kind: str) -> Callable[[], str]:
        def callee() -> str:
            if kind == "slow":
                time.sleep(DEADLINE / 4)
            elif kind == "late":
                time.sleep(DEADLINE * 2)
            elif kind == "hang":
                self.hung.wait(30)
            elif kind == "fail":
                raise ConnectionError("reset by peer")
            return "ok"

        return callee

    def async_(self, kind: str) -> Callable[[], Awaitable[str]]:
        async def callee() -> str:
            if kind == "slow":
                await asyncio.sleep(DEADLINE / 4)
            elif kind == "late":
                await asyncio.sleep(DEADLINE * 2)
            elif kind == "hang":
                event = asyncio.Event()
                self.ahung.append((asyncio.get_running_loop(), event))
                await event.wait()
            elif kind == "fail":
                raise ConnectionError("reset by peer")
            return "ok"

        return callee

    def release(self) -> None:
        self.hung.set()
        for loop, event in self.ahung:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)


@pytest.fixture
def callees() -> Iterator[Callees]:
    made = Callees()
    yield made
    made.release()  # abandoned workers return to the pool


@pytest.fixture(params=["init", "no-init"])
def telemetry(request: pytest.FixtureRequest) -> Iterator[Sdk | None]:
    watchkeeper.shutdown()
    yield start_sdk() if request.param == "init" else None
    watchkeeper.shutdown()


def _guard(name: str, fallback: bool) -> watchkeeper.guard:
    return watchkeeper.guard(
        name, deadline=DEADLINE, backoff=0.02, fallbacks=["fb"] if fallback else []
    )


def _sync_answer(kind: str, fn: Callable[[], str]) -> Answer:
    start = time.monotonic()
    try:
        value: Any = fn()
    except Exception as exc:
        value = type(exc)
    return Answer(kind, value, time.monotonic() - start)


async def _async_answer(kind: str, fn: Callable[[], Awaitable[str]]) -> Answer:
    start = time.monotonic()
    try:
        value: Any = await fn()
    except Exception as exc:
        value = type(exc)
    return Answer(kind, value, time.monotonic() - start)


def _assert_promise(answers: list[Answer], fallback: bool) -> None:
    late = [a for a in answers if a.seconds > DEADLINE + MARGIN]
    worst = max(a.seconds for a in answers) - DEADLINE
    assert not late, f"{len(late)} of {len(answers)} calls late (worst {worst * 1000:.0f} ms)"
    for a in answers:
        assert a.value in ANSWERS[a.kind, fallback], f"{a.kind}: answered {a.value!r}"


def _assert_spans(sdk: Sdk | None, names: list[str], calls: int) -> None:
    if sdk is None:
        return
    spans = [s for s in sdk.spans() if s.name in {f"guard {n}" for n in names}]
    assert len(spans) == calls  # every call ended its span, late callees or not
    assert {(s.attributes or {})[c.WK_OUTCOME] for s in spans} <= {
        "success", "timeout", "error", "fallback", "rejected"
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "no-fallback"])
@pytest.mark.parametrize("kind", KINDS)
def test_sync_call_is_answered_by_its_deadline(
    telemetry: Sdk | None, callees: Callees, kind: str, fallback: bool
) -> None:
    name = f"matrix-sync-{kind}-{fallback}-{telemetry is not None}"
    guarded = _guard(name, fallback)(callees.sync(kind))
    answers = [_sync_answer(kind, guarded) for _ in range(CALLS)]
    _assert_promise(answers, fallback)
    _assert_spans(telemetry, [name], CALLS)


@pytest.mark.slow
@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "no-fallback"])
@pytest.mark.parametrize("kind", KINDS)
async def test_async_call_is_answered_by_its_deadline(
    telemetry: Sdk | None, callees: Callees, kind: str, fallback: bool
) -> None:
    name = f"matrix-async-{kind}-{fallback}-{telemetry is not None}"
    guarded = _guard(name, fallback)(callees.async_(kind))
    answers = [await _async_answer(kind, guarded) for _ in range(CALLS)]
    _assert_promise(answers, fallback)
    _assert_spans(telemetry, [name], CALLS)


CALLERS = 20  # four of each kind at once


@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "no-fallback"])
def test_concurrent_sync_calls_are_each_answered_by_their_deadline(
    telemetry: Sdk | None, callees: Callees, fallback: bool
) -> None:
    tag = f"{fallback}-{telemetry is not None}"
    guarded = {k: _guard(f"matrix-csync-{k}-{tag}", fallback)(callees.sync(k)) for k in KINDS}
    barrier = threading.Barrier(CALLERS, timeout=10)

    def caller(i: int) -> list[Answer]:
        kind = KINDS[i % len(KINDS)]
        barrier.wait()  # all callers start together
        return [_sync_answer(kind, guarded[kind]) for _ in range(CALLS)]

    with ThreadPoolExecutor(CALLERS) as pool:
        answers = [a for batch in pool.map(caller, range(CALLERS)) for a in batch]
    _assert_promise(answers, fallback)
    _assert_spans(telemetry, [f"matrix-csync-{k}-{tag}" for k in KINDS], CALLERS * CALLS)


@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "no-fallback"])
async def test_concurrent_async_calls_are_each_answered_by_their_deadline(
    telemetry: Sdk | None, callees: Callees, fallback: bool
) -> None:
    tag = f"{fallback}-{telemetry is not None}"
    guarded = {k: _guard(f"matrix-casync-{k}-{tag}", fallback)(callees.async_(k)) for k in KINDS}

    async def caller(i: int) -> list[Answer]:
        kind = KINDS[i % len(KINDS)]
        return [await _async_answer(kind, guarded[kind]) for _ in range(CALLS)]

    batches = await asyncio.gather(*(caller(i) for i in range(CALLERS)))
    answers = [a for batch in batches for a in batch]
    _assert_promise(answers, fallback)
    _assert_spans(telemetry, [f"matrix-casync-{k}-{tag}" for k in KINDS], CALLERS * CALLS)
