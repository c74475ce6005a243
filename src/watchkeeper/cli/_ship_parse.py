"""One line of an app's output → one log record: JSON lines under the field names of the
common loggers (loguru, structlog, python-json-logger, pino, bunyan, ECS), plain lines as
they are. Pure: no I/O, no clock; what a line does not say stays zero or empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TIME_KEYS = ("timestamp", "time", "ts", "@timestamp", "asctime", "datetime", "date")
LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "loglevel", "lvl", "severity_text")
MESSAGE_KEYS = ("message", "msg", "event", "text")
TRACE_KEYS = ("trace_id", "traceId", "traceid", "otelTraceID", "trace.id", "trace")
SPAN_KEYS = ("span_id", "spanId", "spanid", "otelSpanID", "span.id", "span")
LOGGER_KEYS = ("logger", "logger_name", "loggerName", "log.logger", "name")
SERVICE_KEYS = ("service.name", "service", "service_name", "serviceName", "otelServiceName")
# A formatted exception under these keys (structlog, python-json-logger) is its stack trace.
STACK_KEYS = ("exception", "exc_info", "stack_trace", "stacktrace", "stack")

# OpenTelemetry severity numbers of the words loggers print.
SEVERITY_WORDS = {
    "trace": 1, "debug": 5, "info": 9, "information": 9, "notice": 10, "warn": 13,
    "warning": 13, "error": 17, "err": 17, "critical": 21, "crit": 21, "fatal": 21,
    "panic": 21, "emerg": 21, "emergency": 21,
}  # fmt: skip
_WORD = re.compile(r"[\[(<]?([A-Za-z]+)[\])>:]?")
_HEX = re.compile(r"[0-9a-fA-F]+")
_FRACTION = re.compile(r"^(.*\d\d:\d\d:\d\d)[.,](\d+)(.*)$")


@dataclass(frozen=True)
class Parsed:
    """What one line says, in OTLP's terms (0, "" or b"" where it says nothing)."""

    body: Any
    time_ns: int = 0
    severity_number: int = 0
    severity_text: str = ""
    trace_id: bytes = b""
    span_id: bytes = b""
    scope: str = ""
    service: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


def parse_line(line: str) -> Parsed:
    """The record of one line (without its newline): a JSON object's fields, else the text."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return _from_loguru(doc) if _is_loguru(doc) else _from_object(doc, line)
    return _from_text(line)


def severity_of_word(word: str) -> int:
    """The severity number a level word names (`WARNING` → 13), 0 when it names none."""
    return SEVERITY_WORDS.get(word.strip().lower(), 0)


def severity_of_number(level: int) -> int:
    """pino's and bunyan's numeric levels (10 trace … 60 fatal) as severity numbers."""
    for bound, number in ((20, 1), (30, 5), (40, 9), (50, 13), (60, 17)):
        if level < bound:
            return number
    return 21


def time_ns_of(value: Any) -> int:
    """Nanoseconds since the epoch of an ISO-8601 string or a number of seconds, ms, µs or ns
    (told apart by magnitude); 0 when the value is no time. A time without zone is UTC."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.isdigit() else float(text)
        except ValueError:
            return _iso_ns(text)
    if not isinstance(value, int | float) or value <= 0:
        return 0
    for bound, to_ns in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3)):
        if value < bound:
            if isinstance(value, int):
                return value * to_ns
            # A float holds microseconds at best: round there, not to float noise.
            return round(value * to_ns / 1000) * 1000
    return int(value)


def _iso_ns(text: str) -> int:
    fraction_ns = 0
    match = _FRACTION.match(text)
    if match:  # datetime keeps µs: read the fraction here to keep every digit
        text = match.group(1) + match.group(3)
        fraction_ns = int(match.group(2)[:9].ljust(9, "0"))
    try:
        moment = datetime.fromisoformat(text.replace(" UTC", "Z"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + fraction_ns


def _pop(doc: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        if key in doc:
            return key, doc.pop(key)
    return None


def _hex_id(doc: dict[str, Any], keys: tuple[str, ...], length: int) -> bytes:
    """The id under the first of `keys` that holds `length` hex digits (popped); a value
    that is no such id stays among the attributes."""
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str):
            text = value.removeprefix("0x")
            if len(text) == length and _HEX.fullmatch(text) and text.strip("0"):
                del doc[key]
                return bytes.fromhex(text)
    return b""


def _severity(doc: dict[str, Any]) -> tuple[int, str]:
    found = _pop(doc, LEVEL_KEYS)
    if found is None:
        return 0, ""
    key, value = found
    if isinstance(value, int | float) and not isinstance(value, bool):
        return severity_of_number(int(value)), ""
    if isinstance(value, str) and severity_of_word(value):
        return severity_of_word(value), value
    doc[key] = value  # not a level: keep it
    return 0, ""


def _time(doc: dict[str, Any]) -> int:
    for key in TIME_KEYS:
        if key in doc:
            ns = time_ns_of(doc[key])
            if ns:
                del doc[key]
                return ns
    return 0


def _exception(doc: dict[str, Any]) -> dict[str, Any]:
    """pino's `err` object and formatted stack traces as OpenTelemetry's exception.*."""
    out: dict[str, Any] = {}
    err = doc.get("err")
    if isinstance(err, dict):
        del doc["err"]
        for src, dst in (("type", "type"), ("message", "message"), ("stack", "stacktrace")):
            if err.get(src) is not None:
                out[f"exception.{dst}"] = err.pop(src)
        out.update({f"err.{k}": v for k, v in err.items()})
    found = _pop(doc, STACK_KEYS)
    if found is not None and isinstance(found[1], str):
        out["exception.stacktrace"] = found[1]
    elif found is not None:
        doc[found[0]] = found[1]
    return out


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _from_object(doc: dict[str, Any], line: str) -> Parsed:
    doc = dict(doc)
    time_ns = _time(doc)
    number, text = _severity(doc)
    trace_id = _hex_id(doc, TRACE_KEYS, 32)
    span_id = _hex_id(doc, SPAN_KEYS, 16) if trace_id else b""
    message = _pop(doc, MESSAGE_KEYS)
    logger = _pop(doc, LOGGER_KEYS)
    service = _pop(doc, SERVICE_KEYS)
    exception = _exception(doc)
    return Parsed(
        # No message field: the line itself is the body, so nothing is lost to a guess.
        body=line.strip() if message is None else message[1],
        time_ns=time_ns,
        severity_number=number,
        severity_text=text,
        trace_id=trace_id,
        span_id=span_id,
        scope=_text_of(logger[1]) if logger else "",
        service=_text_of(service[1]) if service else "",
        attributes={**doc, **exception},
    )


def _is_loguru(doc: dict[str, Any]) -> bool:
    record = doc.get("record")
    return isinstance(record, dict) and isinstance(record.get("level"), dict)


def _from_loguru(doc: dict[str, Any]) -> Parsed:
    """loguru's `serialize=True`: {"text": formatted, "record": {time, level, message, extra…}}."""
    record: dict[str, Any] = doc["record"]
    extra = dict(record.get("extra") or {})
    trace_id = _hex_id(extra, TRACE_KEYS, 32)
    span_id = _hex_id(extra, SPAN_KEYS, 16) if trace_id else b""
    service = _pop(extra, SERVICE_KEYS)
    level_name = str(record["level"].get("name", ""))
    moment = record.get("time") or {}
    attributes: dict[str, Any] = {**extra}
    code = {
        "code.function.name": record.get("function"),
        "code.line.number": record.get("line"),
        "code.file.path": (record.get("file") or {}).get("path"),
    }
    attributes.update({k: v for k, v in code.items() if v is not None})
    exc = record.get("exception")
    if isinstance(exc, dict) and exc.get("type"):
        attributes["exception.type"] = exc["type"]
        attributes["exception.message"] = exc.get("value") or ""
    return Parsed(
        body=record.get("message", ""),
        time_ns=time_ns_of(moment.get("timestamp") or moment.get("repr")),
        severity_number=severity_of_word(level_name) or _loguru_number(record["level"]),
        severity_text=level_name,
        trace_id=trace_id,
        span_id=span_id,
        scope=_text_of(record.get("name")),
        service=_text_of(service[1]) if service else "",
        attributes=attributes,
    )


def _loguru_number(level: dict[str, Any]) -> int:
    """loguru's custom levels (SUCCESS is 25) by their number, on Python's scale."""
    no = level.get("no")
    if not isinstance(no, int):
        return 0
    return severity_of_number(no + 10)  # Python's DEBUG 10 … CRITICAL 50 → pino's 20 … 60


def _from_text(line: str) -> Parsed:
    """A plain line: its text, and the severity word among its first words, if any (the
    first word in any case, `[error]`, `ERROR:`; after a timestamp only in capitals)."""
    words = line.split(None, 4)[:4]
    number, text = 0, ""
    for i, word in enumerate(words):
        match = _WORD.fullmatch(word)
        if match and (i == 0 or match.group(1).isupper()):
            number = severity_of_word(match.group(1))
            if number:
                text = match.group(1)
                break
    return Parsed(body=line.rstrip("\r\n"), severity_number=number, severity_text=text)
