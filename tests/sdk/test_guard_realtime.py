"""Guard deadlines in real time: sync calls abandoned on a worker, async calls cancelled.

(The matrix of every kind of callee, sync and async, concurrent, is in test_guard_matrix.)

Timing asserts are only "did not run past the deadline plus generous slack".
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import watchkeeper
from tests.eventually import eventually
from watchkeeper import CircuitOpen, GuardTimeout
from watchkeeper.model import conventions as c
from watchkeeper.sdk._guard_run import WK_GUARD_ATTEMPTS
from watchkeeper.sdk._workers import Workers

from .conftest import Sdk

DEADLINE = 0.2
SLACK = 1.0  # a loaded 2-core CI machine


def test_thread_mode_stops_waiting_at_the_deadline(sdk: Sdk) -> None:
    release = threading.Event()

    @watchkeeper.guard("slow-sync", deadline=DEADLINE, sync_mode="thread", breaker=False)
    def slow() -> str:
        release.wait(10)
        return "late"

    start = time.monotonic()
    with pytest.raises(GuardTimeout):
        slow()
    assert time.monotonic() - start < DEADLINE + SLACK
    release.set()
    span = sdk.span("guard slow-sync")
    assert span.attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]
    # The guard's own error: type and message, no stack trace (always the guard's own frames).
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "watchkeeper.errors.GuardTimeout"  # type: ignore[index]
    assert "exception.stacktrace" not in event.attributes  # type: ignore[operator]


def test_thread_mode_passes_results_errors_and_the_current_span() -> None:
    from .conftest import start_sdk

    sdk = start_sdk()
    guarded = watchkeeper.guard("t", deadline=2.0, sync_mode="thread", breaker=False, retries=0)

    @guarded
    def inner(x: int) -> int:
        with watchkeeper.observe("inside-worker"):
            if x < 0:
                raise ValueError("negative")
            return x * 2

    assert inner(4) == 8
    with pytest.raises(ValueError, match="negative"):
        inner(-1)
    # One attempt each: the worker's spans nest directly under the guard span.
    guards = {s.context.span_id for s in sdk.spans() if s.name == "guard t"}
    inside = [s for s in sdk.spans() if s.name == "inside-worker"]
    assert len(inside) == 2 and all(s.parent.span_id in guards for s in inside)  # type: ignore[union-attr]
    assert "guard t attempt" not in sdk.names()
    watchkeeper.shutdown()


def test_the_first_hang_is_cut_at_the_deadline_by_default(sdk: Sdk) -> None:
    release = threading.Event()
    hangs = [False, True, False]

    @watchkeeper.guard("first-hang", deadline=DEADLINE, breaker=False, retries=0, fallbacks=["fb"])
    def call() -> str:
        if hangs.pop(0):
            release.wait(10)
        return "ok"

    assert call() == "ok"
    start = time.monotonic()
    assert call() == "fb"  # a guard that was healthy until now: still cut at the deadline
    assert time.monotonic() - start < DEADLINE + SLACK
    assert call() == "ok"  # the hung call holds one worker; the others serve
    release.set()
    outcomes = [s.attributes[c.WK_OUTCOME] for s in sdk.spans() if s.name == "guard first-hang"]  # type: ignore[index]
    assert outcomes == ["success", "fallback", "success"]


def test_auto_is_read_as_thread() -> None:
    assert watchkeeper.guard("was-auto", sync_mode="auto").policy.threaded


@pytest.mark.slow
async def test_async_call_is_cancelled_at_the_deadline(sdk: Sdk) -> None:
    cancelled = asyncio.Event()
    timeouts: list[Any] = []
    deadline = 1.0  # long enough that a loaded machine still starts the call before it

    @watchkeeper.guard("slow-async", deadline=deadline, breaker=False, on_timeout=timeouts.append)
    @watchkeeper.observe("llm call", kind="llm")
    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    start = time.monotonic()
    with pytest.raises(GuardTimeout):
        await slow()
    assert time.monotonic() - start < deadline + SLACK
    assert cancelled.is_set()
    assert [e.outcome for e in timeouts] == ["timeout"]
    guard_span = sdk.span("guard slow-async")  # a timeout is not retried: one attempt, one span
    assert guard_span.attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]
    assert WK_GUARD_ATTEMPTS not in guard_span.attributes  # type: ignore[operator]  # one attempt
    assert "guard slow-async attempt" not in sdk.names()
    llm = sdk.span("llm call")  # cut short by the guard's deadline: a timeout, not an error
    assert llm.attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]
    assert llm.parent is not None and llm.parent.span_id == guard_span.context.span_id


async def test_async_retries_then_fallback_and_request_outcome(sdk: Sdk) -> None:
    calls = 0

    @watchkeeper.guard("flaky", deadline=2.0, backoff=0.01, breaker=False)
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("reset")
        return "ok"

    async def cheap() -> str:
        return "cheap answer"

    @watchkeeper.guard("down", deadline=2.0, backoff=0.01, breaker=False, fallbacks=[cheap])
    async def down() -> str:
        raise ConnectionError("down")

    async with watchkeeper.observe("request"):
        assert await flaky() == "ok"
        assert await down() == "cheap answer"
    assert calls == 3
    assert sdk.span("request").attributes[c.WK_OUTCOME] == "fallback"  # type: ignore[index]
    flaky_span = sdk.span("guard flaky")
    assert flaky_span.attributes[WK_GUARD_ATTEMPTS] == 3  # type: ignore[index]
    attempts = [s for s in sdk.spans() if s.name == "guard flaky attempt"]
    assert [s.attributes[c.WK_GUARD_ATTEMPT] for s in attempts] == [1, 2, 3]  # type: ignore[index]
    assert [s.attributes[c.WK_OUTCOME] for s in attempts] == ["error", "error", "success"]  # type: ignore[index]
    assert all(s.parent.span_id == flaky_span.context.span_id for s in attempts)  # type: ignore[union-attr]
    first = attempts[0]  # recorded after the fact, inside the guard span, before attempt 2
    assert flaky_span.start_time <= first.start_time <= first.end_time <= attempts[1].start_time  # type: ignore[operator]
    assert (
        sdk.span("guard down").attributes[c.WK_GUARD_FALLBACK]
        == "test_async_retries_then_fallback_and_request_outcome.<locals>.cheap"
    )  # type: ignore[index]


async def test_async_task_cancellation_passes_through(sdk: Sdk) -> None:
    @watchkeeper.guard("cancel-me", deadline=5.0, breaker=False)
    async def wait() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(wait())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    guard_span = sdk.span("guard cancel-me")  # ended, as a timeout, with its one attempt
    assert guard_span.attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]
    assert WK_GUARD_ATTEMPTS not in guard_span.attributes  # type: ignore[operator]  # one attempt
    assert "guard cancel-me attempt" not in sdk.names()


def test_block_form_sync(sdk: Sdk) -> None:
    with watchkeeper.guard("blk", deadline=2.0, breaker=False) as g:
        g.result = "computed"
    assert (g.result, g.outcome) == ("computed", "success")
    with watchkeeper.guard("blk2", deadline=2.0, breaker=False, fallbacks=["fb"]) as g:
        raise ConnectionError("down")
    assert (g.result, g.outcome) == ("fb", "fallback")
    with pytest.raises(GuardTimeout), watchkeeper.guard("blk3", deadline=DEADLINE, breaker=False):
        time.sleep(DEADLINE + 0.05)
    with pytest.raises(KeyError), watchkeeper.guard("blk4", deadline=2.0, breaker=False):
        raise KeyError("k")
    assert sdk.span("guard blk3").attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]
    blk4 = sdk.span("guard blk4")  # a block's one attempt is the guard span: the error is on it
    assert blk4.attributes[c.WK_OUTCOME] == "error"  # type: ignore[index]
    assert [e.name for e in blk4.events] == ["exception"]
    assert not [name for name in sdk.names() if name.endswith(" attempt")]
    assert sdk.metric("watchkeeper_guard_retries_total", {"name": "blk2"}) == 0  # cannot re-run


async def test_block_form_async_enforces_the_deadline(sdk: Sdk) -> None:
    start = time.monotonic()
    async with watchkeeper.guard("ablk", deadline=DEADLINE, breaker=False, fallbacks=["fb"]) as g:
        await asyncio.sleep(10)
        g.result = "never"
    assert (g.result, g.outcome) == ("fb", "fallback")
    assert time.monotonic() - start < DEADLINE + SLACK
    with pytest.raises(GuardTimeout):
        async with watchkeeper.guard("ablk2", deadline=DEADLINE, breaker=False):
            await asyncio.sleep(10)


def test_saturated_workers_refuse_calls_at_once_and_count_abandoned_threads(sdk: Sdk) -> None:
    workers = Workers(max_workers=2)
    release = threading.Event()
    guarded = watchkeeper.guard("sat", deadline=DEADLINE, breaker=False, retries=0, workers=workers)
    results: list[str] = []
    for _ in range(3):
        start = time.monotonic()
        try:
            guarded.call(release.wait, 10)
        except GuardTimeout:
            results.append("timeout")
        except CircuitOpen:
            results.append("refused")
    assert time.monotonic() - start < DEADLINE / 2  # refused without waiting for a thread
    assert results == ["timeout", "timeout", "refused"]
    outcomes = [s.attributes[c.WK_OUTCOME] for s in sdk.spans() if s.name == "guard sat"]  # type: ignore[index]
    assert outcomes == ["timeout", "timeout", "rejected"]
    abandoned = {"name": "sat"}
    assert sdk.metric("watchkeeper_guard_abandoned_threads", abandoned) == 2
    assert sdk.metric("watchkeeper_guard_abandoned_calls_total", abandoned) == 2
    release.set()  # the hung calls return: their threads serve again
    eventually(lambda: sdk.metric("watchkeeper_guard_abandoned_threads", abandoned) == 0, 10, 0.01)
    assert sdk.metric("watchkeeper_guard_abandoned_threads", abandoned) == 0
    assert guarded.call(lambda: "served") == "served"
    assert sdk.metric("watchkeeper_guard_abandoned_calls_total", abandoned) == 2
    assert workers.threads == 2


def test_watchdog_reacts_at_the_deadline_of_a_hung_inline_call(sdk: Sdk) -> None:
    fired = threading.Event()

    def on_timeout(event: Any) -> None:
        fired.set()

    @watchkeeper.guard(
        "hang", deadline=DEADLINE, breaker=False, retries=0, on_timeout=on_timeout,
        sync_mode="inline",
    )  # fmt: skip
    def hang() -> str:
        # Runs in the caller's thread: only the watchdog can notice in time.
        assert fired.wait(10), "on_timeout did not fire while the call was stuck"
        return "late"

    with pytest.raises(GuardTimeout):
        hang()  # returns only after the watchdog fired: its late answer is a timeout
    assert sdk.span("guard hang").attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]


def _child_guard_results(out: Any) -> None:
    guarded = watchkeeper.guard("forked", deadline=DEADLINE, sync_mode="thread", breaker=False)
    results = [guarded.call(lambda: "fast")]
    try:
        guarded.call(time.sleep, 5)
    except GuardTimeout:
        results.append("timeout")
    out.put(results)


def test_guard_threads_work_in_a_forked_child() -> None:
    import multiprocessing

    watchkeeper.guard("parent", sync_mode="thread", breaker=False).call(lambda: None)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_guard_results, args=(out,))
    child.start()
    try:
        assert out.get(timeout=20) == ["fast", "timeout"]
    finally:
        child.join(10)


def test_concurrent_thread_mode_calls_each_get_a_worker() -> None:
    from concurrent.futures import ThreadPoolExecutor

    workers = Workers(max_workers=8)
    barrier = threading.Barrier(6, timeout=5)
    guarded = watchkeeper.guard(
        "many", deadline=2.0, sync_mode="thread", breaker=False, retries=0, workers=workers
    )

    def meet() -> str:
        barrier.wait()  # passes only when all six calls run at the same time
        return "met"

    with ThreadPoolExecutor(6) as callers:
        results = list(callers.map(lambda _: guarded.call(meet), range(6)))
    assert results == ["met"] * 6
