"""`logs ship`'s line parser: tables of lines as each common logger prints them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from watchkeeper.cli._ship_parse import parse_line, time_ns_of

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def _loguru(level: str, message: str, **extra: Any) -> str:
    record = {
        "elapsed": {"repr": "0:00:01", "seconds": 1.0},
        "exception": None,
        "extra": extra,
        "file": {"name": "app.py", "path": "/srv/app.py"},
        "function": "handle",
        "level": {"icon": "i", "name": level, "no": 20},
        "line": 42,
        "message": message,
        "module": "app",
        "name": "app.api",
        "time": {"repr": "2023-11-14 22:13:20.250000+00:00", "timestamp": T0 + 0.25},
    }
    return json.dumps({"text": f"... | {level} | {message}\n", "record": record})


LOGGERS = [
    # (logger, line, body, time_ns, severity number, text, scope, attributes kept)
    ("loguru", _loguru("WARNING", "slow answer", trace_id=TRACE, span_id=SPAN, user="ann"),
     "slow answer", (T0 * 1000 + 250) * 1_000_000, 13, "WARNING", "app.api",
     {"user": "ann", "code.function.name": "handle", "code.line.number": 42}),
    ("structlog", json.dumps({"event": "cache miss", "level": "debug", "logger": "rag",
                              "timestamp": "2023-11-14T22:13:20.123456Z", "key": "k1",
                              "trace_id": TRACE, "span_id": SPAN}),
     "cache miss", T0 * 10**9 + 123_456_000, 5, "debug", "rag", {"key": "k1"}),
    ("python-json-logger", json.dumps({"asctime": "2023-11-14 22:13:20,500",
                                       "levelname": "ERROR", "name": "billing",
                                       "message": "card declined", "otelTraceID": TRACE,
                                       "otelSpanID": SPAN, "order": 7}),
     "card declined", T0 * 10**9 + 500_000_000, 17, "ERROR", "billing", {"order": 7}),
    ("pino", json.dumps({"level": 50, "time": T0 * 1000 + 7, "pid": 12, "hostname": "h",
                         "msg": "upstream failed", "traceId": TRACE, "spanId": SPAN,
                         "err": {"type": "Error", "message": "boom", "stack": "Error: boom"}}),
     "upstream failed", (T0 * 1000 + 7) * 1_000_000, 17, "", "",
     {"pid": 12, "hostname": "h", "exception.type": "Error",
      "exception.stacktrace": "Error: boom"}),
    ("bunyan", json.dumps({"name": "api", "hostname": "h", "pid": 3, "level": 30,
                           "msg": "started", "time": "2023-11-14T22:13:20.000Z", "v": 0,
                           "trace_id": TRACE, "span_id": SPAN}),
     "started", T0 * 10**9, 9, "", "api", {"v": 0}),
    ("ecs", json.dumps({"@timestamp": "2023-11-14T22:13:20Z", "log.level": "warn",
                        "message": "disk at 91%", "trace.id": TRACE, "span.id": SPAN,
                        "service.name": "ops"}),
     "disk at 91%", T0 * 10**9, 13, "warn", "", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("logger", "line", "body", "time_ns", "number", "text", "scope", "attrs"),
    LOGGERS,
    ids=[row[0] for row in LOGGERS],
)
def test_each_logger_s_fields_are_read(
    logger: str, line: str, body: str, time_ns: int, number: int, text: str, scope: str,
    attrs: dict[str, Any],
) -> None:  # fmt: skip
    p = parse_line(line)
    assert (p.body, p.time_ns, p.severity_number, p.severity_text, p.scope) == (
        body, time_ns, number, text, scope)  # fmt: skip
    assert (p.trace_id.hex(), p.span_id.hex()) == (TRACE, SPAN)
    assert attrs.items() <= p.attributes.items()
    read = {"trace_id", "span_id", "traceId", "otelTraceID", "level", "msg", "message", "time"}
    assert not read & p.attributes.keys(), p.attributes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T0, T0 * 10**9),  # epoch seconds
        (T0 + 0.5, T0 * 10**9 + 500_000_000),
        (T0 * 1000 + 1, (T0 * 1000 + 1) * 10**6),  # ms
        (T0 * 10**6 + 1, (T0 * 10**6 + 1) * 1000),  # µs
        (T0 * 10**9 + 1, T0 * 10**9 + 1),  # ns
        (str(T0 * 1000), T0 * 10**9),  # a number in a string
        ("2023-11-14T22:13:20.123456789Z", T0 * 10**9 + 123_456_789),  # every digit kept
        ("2023-11-14T23:13:20+01:00", T0 * 10**9),
        ("2023-11-14 22:13:20", T0 * 10**9),  # no zone: UTC
        ("2023-11-14 22:13:20,25", T0 * 10**9 + 250_000_000),  # Python's asctime
        ("yesterday", 0),
        (True, 0),
        (None, 0),
        (-5, 0),
    ],
)
def test_time_shapes(value: Any, expected: int) -> None:
    assert time_ns_of(value) == expected


@pytest.mark.parametrize(
    ("line", "number", "text"),
    [
        ("ERROR could not connect", 17, "ERROR"),
        ("[warn] retrying", 13, "warn"),
        ("Info: started", 9, "Info"),
        ("2023-11-14 22:13:20,100 CRITICAL out of memory", 21, "CRITICAL"),
        ("2023-11-14 22:13:20 error handling ended", 0, ""),  # lower case after a time: prose
        ("listening on :8080", 0, ""),
        ('{"not": "closed"', 0, ""),  # broken JSON is a plain line
        ("[1, 2, 3]", 0, ""),
    ],
)
def test_plain_lines_keep_their_text_and_a_leading_severity_word(
    line: str, number: int, text: str
) -> None:
    p = parse_line(line)
    assert (p.body, p.severity_number, p.severity_text) == (line, number, text)
    assert p.time_ns == 0 and p.attributes == {}


def test_a_json_line_without_a_message_keeps_the_line_as_body_and_odd_values_as_attributes() -> (
    None
):
    line = '{"level": "loud", "time": "soon", "trace_id": "xyz", "n": 1}'
    p = parse_line(line)
    assert p.body == line and p.severity_number == 0 and p.time_ns == 0 and p.trace_id == b""
    assert p.attributes == {"level": "loud", "time": "soon", "trace_id": "xyz", "n": 1}


def test_a_structured_message_stays_structured() -> None:
    p = parse_line('{"msg": {"sku": "A-1", "left": 2}, "level": "info"}')
    assert p.body == {"sku": "A-1", "left": 2} and p.severity_number == 9


def test_a_span_id_without_a_trace_id_is_an_attribute() -> None:
    p = parse_line(json.dumps({"msg": "x", "span_id": SPAN}))
    assert p.span_id == b"" and p.attributes == {"span_id": SPAN}
