"""JSON log lines, one format for apps (the SDK) and the server: one object per line, with
the trace and span ids of the current span.

Here, below both, because the SDK must not import the server and the server must not import
the SDK (DESIGN.md, "Imports run one way"). Needs only the standard library and
OpenTelemetry's API, which the SDK installs.
"""

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
    service: str, level: str = "INFO", stream: TextIO | None = None, *, logger: str = ""
) -> logging.Handler:
    """Put one JSON handler on `logger` (the root by default) and set that logger's level.

    It replaces ours from an earlier call. A named logger stops propagating while it holds
    the handler, so the root's handlers (the app's) do not print its records a second time;
    `uninstall_json_logging` gives back the level and propagation it had.
    """
    target = logging.getLogger(logger or None)
    restore = _remove(target) or (target.level, target.propagate)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    setattr(handler, _MARK, restore)
    target.addHandler(handler)
    target.setLevel(level)
    if logger:
        target.propagate = False
    return handler


def uninstall_json_logging(logger: str = "") -> None:
    """Remove the handler `install_json_logging` put on `logger`, restoring what it changed."""
    target = logging.getLogger(logger or None)
    restore = _remove(target)
    if restore is not None:
        target.setLevel(restore[0])
        target.propagate = restore[1]


def _remove(target: logging.Logger) -> tuple[int, bool] | None:
    """Take our handler off `target`; the (level, propagate) it found there, None if none."""
    found: tuple[int, bool] | None = None
    for handler in list(target.handlers):
        mark = getattr(handler, _MARK, None)
        if mark is not None:
            target.removeHandler(handler)
            found = mark
    return found
