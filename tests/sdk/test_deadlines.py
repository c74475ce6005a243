"""Async deadlines on one timer per loop: each watch expires at its own deadline, never before,
only its own cancellation becomes a timeout, and a loop's state goes with the loop.

Timing asserts are only "not before the deadline" and "not long after it".
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence

import pytest

import watchkeeper
from watchkeeper import GuardTimeout
from watchkeeper.model import conventions as c
from watchkeeper.sdk._deadlines import watch

from .conftest import Sdk

SLACK = 1.0  # a loaded 2-core CI machine


async def expires_after(seconds: float, start: float) -> float:
    """Wait under a watch of `seconds`; the time its expiry cut the wait."""
    w = watch(seconds)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        assert w.end(), "the watch's own expiry is a timeout"
        return time.monotonic() - start
    raise AssertionError("not cut")


@pytest.mark.slow
async def test_each_watch_expires_at_its_own_deadline() -> None:
    start = time.monotonic()
    # Started latest-deadline first: each sooner deadline needs a sooner timer.
    deadlines = (0.9, 0.3, 0.6)
    cut = await asyncio.gather(*(expires_after(d, start) for d in deadlines))
    for deadline, at in zip(deadlines, cut, strict=True):
        assert deadline <= at < deadline + SLACK
    assert sorted(cut) == [cut[1], cut[2], cut[0]]


async def test_a_watch_ended_in_time_leaves_the_task_alone() -> None:
    w = watch(0.2)
    await asyncio.sleep(0)
    assert not w.end()
    await asyncio.sleep(0.4)  # past the old deadline: its timer finds nothing to cut
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


@pytest.mark.slow
async def test_a_timer_left_by_an_ended_watch_does_not_cut_a_later_one() -> None:
    # The first watch leaves a timer at 1.0 s; the second, started at 0.5 s, is due at 1.5 s
    # and must outlive that timer.
    first = watch(1.0)
    first.end()
    await asyncio.sleep(0.5)
    second = watch(1.0)
    await asyncio.sleep(0.7)
    assert not second.end()


async def test_another_cancellation_is_not_a_timeout() -> None:
    async def body() -> bool:
        w = watch(0.01)
        time.sleep(0.05)  # hold the loop past the deadline...
        asyncio.current_task().cancel()  # type: ignore[union-attr]  # ...and someone cancels
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            return w.end()
        raise AssertionError("not cancelled")

    task = asyncio.create_task(body())
    assert await task is False


def nested(
    outer: tuple[str, float], inner: tuple[str, float], fallbacks: Sequence[str] = ()
) -> Callable[[], Awaitable[str]]:
    """A guarded call (name, deadline) whose work is a guarded call that hangs."""

    @watchkeeper.guard(inner[0], deadline=inner[1], breaker=False, fallbacks=fallbacks)
    async def hang() -> str:
        await asyncio.sleep(30)
        return "never"

    @watchkeeper.guard(outer[0], deadline=outer[1], breaker=False)
    async def call() -> str:
        return await hang()

    return call


async def test_nested_guards_each_keep_their_own_deadline(sdk: Sdk) -> None:
    outer = nested(("outer", 5.0), ("inner", 0.2), fallbacks=["inner fallback"])
    assert await outer() == "inner fallback"  # the inner deadline does not reach the outer call
    assert sdk.span("guard outer").attributes[c.WK_OUTCOME] == "success"  # type: ignore[index]

    short_outer = nested(("short outer", 0.2), ("slow inner", 5.0))
    start = time.monotonic()
    with pytest.raises(GuardTimeout, match="no answer within"):
        await short_outer()
    assert time.monotonic() - start < 0.2 + SLACK
    # The outer deadline cut the inner call: a cancellation there, a timeout for the outer.
    assert sdk.span("guard short outer").attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]
    assert sdk.span("guard slow inner").attributes[c.WK_OUTCOME] == "timeout"  # type: ignore[index]


def test_a_loops_deadlines_go_with_the_loop() -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    @watchkeeper.guard("per-loop", deadline=5.0, breaker=False)
    async def call() -> int:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return 1

    assert asyncio.run(call()) + asyncio.run(call()) == 2
    gc.collect()
    assert [ref() for ref in loops] == [None, None]  # the timers left behind do not hold them


class ShiftedClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock is not time.monotonic (as uvloop's is its own)."""

    def time(self) -> float:
        return super().time() + 1000.0


def test_a_loop_with_its_own_clock_is_watched_on_that_clock() -> None:
    @watchkeeper.guard("own-clock", deadline=0.3, breaker=False)
    async def slow() -> None:
        await asyncio.sleep(30)

    async def timed() -> float:
        start = time.monotonic()
        with pytest.raises(GuardTimeout):
            await slow()
        return time.monotonic() - start

    loop = ShiftedClockLoop()
    try:
        elapsed = loop.run_until_complete(timed())
    finally:
        loop.close()
    assert 0.3 <= elapsed < 0.3 + SLACK  # on monotonic time it would have expired at once
    ref = weakref.ref(loop)
    del loop
    gc.collect()
    assert ref() is None  # kept unbound, the loop's clock does not hold the loop


async def test_many_concurrent_guarded_calls_each_keep_their_deadline() -> None:
    rng = random.Random(7)
    cases = [(rng.uniform(0.05, 0.4), rng.uniform(0.0, 0.5)) for _ in range(300)]

    async def one(i: int, deadline: float, sleep: float) -> tuple[str, float]:
        @watchkeeper.guard(f"many-{i % 5}", deadline=deadline, breaker=False, retries=0)
        async def call() -> str:
            await asyncio.sleep(sleep)
            return "ok"

        start = time.monotonic()
        try:
            return await call(), time.monotonic() - start
        except GuardTimeout:
            return "timeout", time.monotonic() - start

    results = await asyncio.gather(*(one(i, d, s) for i, (d, s) in enumerate(cases)))
    for (deadline, sleep), (outcome, elapsed) in zip(cases, results, strict=True):
        if abs(sleep - deadline) > 0.1:  # clear cases only: a loaded machine blurs the edge
            assert outcome == ("ok" if sleep < deadline else "timeout"), (deadline, sleep)
        if outcome == "timeout":
            assert deadline <= elapsed < deadline + SLACK
