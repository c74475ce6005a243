"""JSON logs: one object per line, with the trace and span ids of the current span."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
_MARK = "_watchkeeper_json_handler"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: timestamp, level, service, logger, message, ids."""

    def __init__(self, service: str = "unknown_service") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single line of JSON."""
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            doc["trace_id"] = format(ctx.trace_id, "032x")
            doc["span_id"] = format(ctx.span_id, "016x")
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extras:
            doc["extra"] = extras
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception"] = {
                "type": record.exc_info[0].__name__,
                "message": str(record.exc_info[1]),
                "stacktrace": self.formatException(record.exc_info),
            }
        return json.dumps(doc, default=repr, ensure_ascii=False)


def install_json_logging(
    service: str, level: str = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Put one JSON handler on the root logger (replacing ours from an earlier init)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def uninstall_json_logging() -> None:
    """Remove the handler `install_json_logging` put on the root logger, if any."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
