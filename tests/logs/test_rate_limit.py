"""`RecordRate` (per-project token buckets of log records) on a fake clock, and `Handoff`
(the rows decoded at the door, kept for the writer) within its bound."""

from __future__ import annotations

import pytest

from watchkeeper.ingest._handoff import Handoff, digest
from watchkeeper.ingest._rate_limit import RecordRate


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("steps", "want"),
    [
        # (seconds later, records of project "a") -> seconds to wait (0: taken)
        ([(0, 100)], [0.0]),  # a full bucket: 10/s x 10 s
        ([(0, 100), (0, 1)], [0.0, 1.0]),  # empty: 0.1 s for one record, Retry-After 1 at least
        ([(0, 100), (5, 50)], [0.0, 0.0]),  # 5 s refill 50
        ([(0, 100), (2, 50)], [0.0, 3.0]),  # 20 there, 30 missing at 10/s
        ([(0, 500)], [0.0]),  # larger than the bucket: passes when it is full...
        ([(0, 500), (9, 500), (41, 500)], [0.0, 41.0, 0.0]),  # ...then waits out its debt
    ],
)
def test_a_project_is_held_to_its_rate(steps: list[tuple[float, int]], want: list[float]) -> None:
    clock = Clock()
    rate = RecordRate(10, 10, clock)
    got = []
    for later, n in steps:
        clock.now += later
        got.append(rate.take({"a": n}))
    assert got == want


def test_projects_have_buckets_of_their_own_and_a_request_takes_all_or_none() -> None:
    clock = Clock()
    rate = RecordRate(10, 10, clock)
    assert rate.take({"a": 100}) == 0.0
    assert rate.take({"b": 60}) == 0.0
    assert rate.take({"a": 10, "b": 10}) == 1.0  # a is empty: neither is taken
    assert rate.take({"b": 40}) == 0.0  # b still had its 40


def test_the_handoff_keeps_what_fits_and_gives_each_once() -> None:
    clock = Clock()
    handoff: Handoff[str] = Handoff(100, clock)
    one, two = digest("p", "protobuf", 0, b"x"), digest("p", "json", 0, b"x")
    assert one != two and one == digest("p", "protobuf", 0, b"x")
    assert handoff.put(one, "rows 1", 60)
    assert handoff.put(one, "rows 1 again", 40)  # the same request twice: both kept
    assert not handoff.put(two, "rows 2", 1)  # no room: the writer will decode it
    assert handoff.take(one) == "rows 1" and handoff.take(one) == "rows 1 again"
    assert handoff.take(one) is None and handoff.held == 0
    assert handoff.put(two, "rows 2", 10)
    clock.now += 600  # never taken (a request cancelled once spooled): let go
    assert handoff.put(one, "rows 3", 95)
    assert handoff.take(two) is None and handoff.held == 95
