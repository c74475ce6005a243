"""Log records as the ingest path produces them and the log store keeps them."""

from __future__ import annotations

from dataclasses import dataclass

#: OTLP SeverityNumber ranges: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR,
#: 21-24 FATAL; 0 is unspecified.
SEVERITIES: tuple[str, ...] = ("trace", "debug", "info", "warn", "error", "fatal")


def severity_name(number: int) -> str:
    """The severity's range name ("unspecified" for 0 or out of range)."""
    return SEVERITIES[(number - 1) // 4] if 1 <= number <= 24 else "unspecified"


@dataclass(slots=True)
class LogRow:
    """One log record: narrow columns to filter on, body and attributes to read and search.

    `time_ns` is the record's time, or the time it was observed when it has none (as OTLP
    says); `log_id` is a digest of what the record says, so a record delivered twice (a
    replay after a crash, an exporter's retry) is stored once.
    """

    project: str
    log_id: str  # 16 hex characters
    time_ns: int
    observed_ns: int
    severity_number: int  # 0-24, as OTLP's SeverityNumber
    severity_text: str
    body: str  # a string body as it is; any other value as JSON
    trace_id: str = ""  # 32 hex characters, or "" when the record is outside a trace
    span_id: str = ""  # 16 hex characters, or ""
    service: str = "unknown_service"
    environment: str = ""
    host: str = ""
    scope: str = ""
    event_name: str = ""
    attributes: str = "{}"  # JSON object
    resource: str = "{}"  # JSON object
