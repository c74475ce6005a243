"""The pure text pieces every channel shows."""

from __future__ import annotations

import pytest

from tests.alerting.channels._support import notification
from watchkeeper.alerting.channels._http import parse_retry_after
from watchkeeper.alerting.channels._render import format_number, format_window, value_text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (12.5, "%", "12.5%"),
        (2875.0, "ms", "2875 ms"),
        (1.2, "USD", "1.2 USD"),
        (0.012345, "USD", "0.01235 USD"),
        (1234.567, "", "1234.6"),
        (3.14159, "s", "3.14 s"),
    ],
)
def test_format_number(value: float, unit: str, text: str) -> None:
    assert format_number(value, unit) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "instant"), (30, "30s"), (300, "5m"), (5400, "1h30m"), (86400 * 2, "2d")],
)
def test_format_window(seconds: float, text: str) -> None:
    assert format_window(seconds) == text


def test_value_text_without_threshold_or_value() -> None:
    assert value_text(notification(threshold=None, window_s=0)) == "observed 2875 ms"
    assert value_text(notification(value=None)) == ""


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), (None, None), ("inf", None),
     ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0)],
)  # fmt: skip
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=1445412470.0) == seconds
