"""Parsing of the common query parameters (pure functions, tables of cases)."""

from __future__ import annotations

import pytest

from watchkeeper.errors import ValidationError
from watchkeeper.query._params import (
    MAX_TIME_MS,
    MAX_TIME_NS,
    parse_filter,
    parse_int,
    parse_number,
    parse_time,
    split_values,
)

NS = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1700000000000", 1_700_000_000 * NS),  # unix ms, the API's one unit
        ("1700000000000.5", 1_700_000_000 * NS + 500_000),
        ("1700000000123", 1_700_000_000_123_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * NS),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000 * NS),
        ("2023-11-14T22:13:20", 1_700_000_000 * NS),  # naive = UTC
        (" 2023-11-14 ", 1_699_920_000 * NS),
    ],
)
def test_times(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize("text", ["", "soon", "nan", "inf", "2023-13-01"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValidationError, match="ISO-8601"):
        parse_time(text)


def test_lists_split_on_commas_and_repeat() -> None:
    assert split_values(["a,b", " c ", "a", ","], "service") == ("a", "b", "c")
    with pytest.raises(ValidationError):
        split_values([",".join(map(str, range(101)))], "service")


def test_filter_from_parameters() -> None:
    f = parse_filter(
        "p",
        {
            "range": ["1h"],
            "model": ["gpt-4o,claude"],
            "user": ["u1"],
            "q": ["Hi"],
            "scope": ["llm"],
        },
        now_s=1000.0,
    )
    assert (f.start_ns, f.end_ns) == (-2600 * NS, 1000 * NS)
    assert f.models == ("gpt-4o", "claude") and f.user_id == "u1" and f.text == "Hi"
    assert f.scope == "llm" and f.services == ()
    assert parse_filter("p", {"scope": ["llm"]}, 0.0, scope="requests").scope == "requests"


@pytest.mark.parametrize(
    "params",
    [
        {"range": ["1y"]},
        {"scope": ["all"]},
        {"max_duration_ms": ["fast"]},
        {"start": ["10"], "end": ["5"]},
        {"q": ["x" * 501]},
    ],
)
def test_bad_filters(params: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationError):
        parse_filter("p", params, 0.0)


@pytest.mark.parametrize(
    "text",
    ["-1", "1e30", "1e309", "9" * 40, "9999-12-31", "0001-01-01T00:00:00+01:00", "1e999999999"],
)
def test_times_the_store_cannot_hold(text: str) -> None:
    with pytest.raises(ValidationError, match="between 1970-01-01 and 2262-04-11") as caught:
        parse_time(text, "end")
    assert str(caught.value).startswith("end=") and len(str(caught.value)) < 300


def test_the_first_and_last_times() -> None:
    assert parse_time("0") == 0
    assert parse_time(str(MAX_TIME_MS)) == MAX_TIME_MS * 1_000_000 <= MAX_TIME_NS
    assert parse_time("2262-04-11T23:47:16Z") == 9_223_372_036 * NS


@pytest.mark.parametrize("text", ["1e300", "-1", "nan", "inf", "1e3", "9" * 40, "1" * 5000])
def test_integers_outside_their_range(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^limit=.* must be an integer between 1 and 1000$"):
        parse_int(text, "limit", 50, high=1000)


@pytest.mark.parametrize("text", ["1e300", "-1e300", "1e309", "-1", "nan", "inf", "9" * 40])
def test_numbers_outside_their_range(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^min_duration_ms=.* between 0 and 9223372036854$"):
        parse_number(text, "min_duration_ms")
