"""The watchdog fires for every inline call still running at its deadline, and only for those,
while other calls come and go from many threads without its lock.

Timing asserts are only "not before the deadline" and "not long after it".
"""

from __future__ import annotations

import threading
import time

import pytest

from watchkeeper.sdk._watchdog import Watchdog

SLACK = 1.0  # a loaded 2-core CI machine


class Call:
    """A watched call: when it is due, and when (if ever) the watchdog said it overran."""

    def __init__(self, deadline_s: float) -> None:
        self.end_at = time.monotonic() + deadline_s
        self.overran_at: float | None = None
        self.fired = threading.Event()

    def overran(self) -> None:
        self.overran_at = time.monotonic()
        self.fired.set()


def churn(dog: Watchdog, stop: threading.Event, deadline_s: float, quick: list[Call]) -> None:
    """Enter and leave quick calls until told to stop."""
    while not stop.is_set():
        call = Call(deadline_s)
        dog.enter(call)
        dog.leave(call)
        quick.append(call)


@pytest.mark.slow
def test_stuck_calls_fire_at_their_deadlines_among_many_quick_ones() -> None:
    dog = Watchdog()
    stop = threading.Event()
    quick: list[Call] = []
    threads = [
        threading.Thread(target=churn, args=(dog, stop, 5.0, quick), daemon=True) for _ in range(4)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(0.05)  # the thread has gone to sleep until the quick calls' latest deadline
        stuck = [Call(d) for d in (0.6, 0.2, 0.4)]  # each sooner than that: each must wake it
        for call in stuck:
            dog.enter(call)
        for call in stuck:
            assert call.fired.wait(10), "a stuck call's deadline passed unnoticed"
            assert call.overran_at is not None
            assert call.end_at <= call.overran_at < call.end_at + SLACK
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(quick) > 100
    assert not [c for c in quick if c.fired.is_set()]  # calls that left are never reported


@pytest.mark.slow
def test_a_call_after_a_quiet_spell_is_still_watched() -> None:
    dog = Watchdog()
    first = Call(0.1)
    dog.enter(first)
    dog.leave(first)
    time.sleep(0.3)  # past every deadline handed out: the thread sleeps with no timeout
    late = Call(0.2)
    dog.enter(late)
    assert late.fired.wait(10)
    assert late.overran_at is not None and late.overran_at >= late.end_at
    assert not first.fired.is_set()
