"""`eventually`: the one way tests wait for something that happens in another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    timeout_s: float,
    every_s: float = 0.05,
    until: Callable[[T], object] = bool,
) -> T:
    """Call `check()` every `every_s` until `until(value)` holds (by default: the value is
    truthy) or `timeout_s` has passed, and return the last value either way.

    The caller asserts on what it gets back, so a failure shows what was seen last:
    `assert eventually(lambda: len(inbox) >= 2, 10)`, or
    `count = eventually(read_count, 30, 0.2, until=lambda n: n >= 40); assert count == 40`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if until(value) or time.monotonic() >= deadline:
            return value
        time.sleep(every_s)
