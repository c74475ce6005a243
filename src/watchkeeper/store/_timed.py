"""Timing a store's queries by kind and its writes by part, for whoever watches the store
(the server's metrics, the benchmarks).

A store holds a `timer` (by default one that measures nothing); each query method marked
`@timed("kind")` runs inside `timer("kind")`. The server sets a timer that observes a
Prometheus histogram, so no wrapper has to forward every method of the store by hand.
A store's `write_timer` is the same for the parts of a write (engine by engine: the
DuckDB store's are `WRITE_PARTS`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Concatenate, ParamSpec, Protocol, TypeVar

#: `timer(kind)`: a context manager around one query (or part of a write) of that kind.
Timer = Callable[[str], AbstractContextManager[object]]


def untimed(kind: str) -> AbstractContextManager[object]:
    """The timer that measures nothing."""
    return nullcontext()


class _Timed(Protocol):
    timer: Timer


S = TypeVar("S", bound=_Timed)
P = ParamSpec("P")
R = TypeVar("R")


def timed(
    kind: str,
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Run the decorated store method inside `self.timer(kind)`."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        @functools.wraps(method)
        def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with self.timer(kind):
                return method(self, *args, **kwargs)

        return run

    return decorate
