"""The API's one time unit: instants in unix milliseconds, durations in milliseconds.

The services keep time as unix seconds (floats) and the store as nanoseconds; answers convert
at the edge, with these.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import PlainSerializer

#: An instant kept in unix seconds, shown in the JSON API as integer unix milliseconds.
ShownAsMs = Annotated[
    float, PlainSerializer(lambda s: round(s * 1000), return_type=int, when_used="json")
]


def ms(seconds: float) -> int:
    """An instant in unix seconds as unix milliseconds."""
    return round(seconds * 1000)


def ms_or_none(seconds: float | None) -> int | None:
    """`ms`, keeping None."""
    return None if seconds is None else ms(seconds)
