"""The app's `logging` records, exported over OTLP/HTTP to the server's `/v1/logs`.

`init(logs="otlp")` (the default) sends every record the app's loggers let through, at
`logs_level` or above, with the trace and span id of the span active where it was logged,
the resource of the SDK's spans (service, environment, project) plus `host.name`, the
logger's name as the scope, `exc_info` as the `exception.*` attributes and `extra=` fields
as attributes.

Where records are taken: not from a handler on the root logger. A handler there would
silence Python's last-resort output of an app that never configured logging, turn the app's
later `logging.basicConfig()` into a no-op (it does nothing once the root has a handler), be
removed by its `dictConfig()` (Django, uvicorn's `--log-config`) and miss loggers that do not
propagate. Instead `Logger.callHandlers`, which every record that passed its logger's level
and filters goes through exactly once, is wrapped (once per process, as Sentry's SDK does),
and hands each record to our handler after the app's own handlers had it. With no export
configured the wrapper only calls the original.

Never in the way of the app: records queue in a bounded queue (`OTEL_BLRP_MAX_QUEUE_SIZE`,
default 2,048) exported in batches by a background thread; a full queue drops the record and
counts it (`watchkeeper_sdk_log_records_dropped_total`); a failure is reported once and
counted (`_safe`). Never recursive: records of OpenTelemetry's and the SDK's own loggers are
not exported, nor any record logged on a thread while it is inside our handler or an export
(the HTTP client's and the exporter's own lines).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from watchkeeper.sdk._safe import report_failure

if TYPE_CHECKING:
    from watchkeeper.sdk._metrics import SdkMetrics
    from watchkeeper.sdk._settings import Settings

#: Loggers whose records are never exported: the exporter's own and the SDK's diagnostics.
SKIPPED_LOGGERS = ("opentelemetry", "watchkeeper.sdk")
#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}  # OTel's names for Python's
_BANDS = ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5), (1, 1))  # levelno → first number
_INT64 = 2**63
_DEPTH = 6  # nesting kept in a structured body or attribute; deeper values become text
DEFAULT_MAX_QUEUE = 2048

_local = threading.local()  # .busy: this thread is inside our handler or an export
#: The logger OpenTelemetry's OTLP/HTTP log exporter writes its retries and failures to.
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http._log_exporter"


def severity_number(levelno: int) -> int:
    """The OTel severity number of a Python level: DEBUG 5, INFO 9, WARNING 13, ERROR 17,
    CRITICAL 21; levels between take the next numbers of their range (25 → 11)."""
    for floor, first in _BANDS:
        if levelno >= floor:
            return first + min(3, (levelno - floor) * 4 // 10)
    return 0


def exception_attributes(exc_info: Any) -> dict[str, str]:
    """`exception.type` (module-qualified unless a builtin), `.message`, `.stacktrace`."""
    exc_type, exc, tb = exc_info
    module = getattr(exc_type, "__module__", "")
    name = exc_type.__qualname__
    return {
        "exception.type": name if module in ("builtins", "") else f"{module}.{name}",
        "exception.message": _text(str(exc)),
        "exception.stacktrace": "".join(traceback.format_exception(exc_type, exc, tb)),
    }


def to_otel(record: logging.LogRecord) -> LogRecord:
    """The OTel log record of a Python one (trace ids from the current context)."""
    return LogRecord(
        timestamp=int(record.created * 1e9),
        observed_timestamp=time.time_ns(),
        severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
        severity_number=SeverityNumber(severity_number(record.levelno)),
        body=body_of(record),
        attributes=attributes_of(record),
    )


def body_of(record: logging.LogRecord) -> Any:
    """The formatted message; a dict logged without arguments stays structured."""
    if isinstance(record.msg, Mapping) and not record.args:
        return value_of(record.msg)
    try:
        return _text(record.getMessage())
    except Exception:  # arguments that do not fit the format: keep what was said
        return _text(f"{record.msg!s} {record.args!r}")


def attributes_of(record: logging.LogRecord) -> dict[str, Any]:
    """`extra=` fields, where the record was logged (`code.*`) and its exception."""
    attrs: dict[str, Any] = {
        k: value_of(v) for k, v in record.__dict__.items() if k not in _STANDARD and v is not None
    }
    attrs["code.file.path"] = record.pathname
    attrs["code.function.name"] = record.funcName
    attrs["code.line.number"] = record.lineno
    if record.exc_info and record.exc_info[0] is not None:
        attrs.update(exception_attributes(record.exc_info))
    if record.stack_info:
        attrs["code.stacktrace"] = record.stack_info
    return attrs


def value_of(value: Any, depth: int = 0) -> Any:
    """`value` as an OTLP AnyValue can carry it: text, numbers, lists and maps; anything
    else as its text (an exporter refuses a whole batch over one value it cannot encode)."""
    if value is None or isinstance(value, bool | float | bytes):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return int(value) if -_INT64 <= value < _INT64 else str(value)
    if depth < _DEPTH:
        if isinstance(value, Mapping):
            return {str(k): value_of(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [value_of(v, depth + 1) for v in value]
    try:
        return _text(str(value))
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _text(s: str) -> str:
    """`s` with lone surrogates replaced: protobuf refuses them, and the batch with them."""
    return s if s.isascii() else s.encode("utf-8", "replace").decode("utf-8")


def env_int(name: str, default: int) -> int:
    """A positive whole number from the environment; `default` when unset or not one (a typo
    in a tuning knob must not cost the app its telemetry)."""
    try:
        value = int(os.environ.get(name, "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


def _skipped(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in SKIPPED_LOGGERS)


class OtlpLogHandler(logging.Handler):
    """Emits records through an OTel `LoggerProvider` (one OTel logger per Python logger)."""

    def __init__(self, provider: LoggerProvider, level: str) -> None:
        super().__init__(level)
        self.provider = provider

    def offer(self, record: logging.LogRecord) -> None:
        """Take `record` unless it is below our level, ours, or logged from inside an export."""
        if record.levelno < self.level or getattr(_local, "busy", False) or _skipped(record.name):
            return
        _local.busy = True
        try:
            self.handle(record)
        finally:
            _local.busy = False

    def emit(self, record: logging.LogRecord) -> None:
        """Translate and queue the record; a failure is the SDK's, never the app's."""
        try:
            self.provider.get_logger(record.name).emit(to_otel(record))
        except Exception as exc:
            report_failure("log export", exc)


# --- the hook on Logger.callHandlers --------------------------------------------------------

_handler: OtlpLogHandler | None = None
_hook_lock = threading.Lock()
_hooked = False


def _install_hook() -> None:
    """Wrap `logging.Logger.callHandlers` once per process (see the module's docstring)."""
    global _hooked
    with _hook_lock:
        if _hooked:
            return
        original: Callable[[logging.Logger, logging.LogRecord], None] = logging.Logger.callHandlers

        def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
            original(self, record)
            handler = _handler
            if handler is not None:
                handler.offer(record)

        call_handlers.__doc__ = original.__doc__
        logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
        _hooked = True


def current_handler() -> OtlpLogHandler | None:
    """The handler records go to now (None when the export is off)."""
    return _handler


# --- export with accounting ----------------------------------------------------------------


class CountingLogExporter(LogRecordExporter):
    """Delegates to an exporter and counts the records it exported or failed to export."""

    def __init__(
        self, inner: LogRecordExporter, metrics: SdkMetrics, taken: Callable[[int], None]
    ) -> None:
        self.inner = inner
        self._taken = taken
        self._stopped = False
        self._stop_lock = threading.Lock()
        self.aborted = False  # `abort()` cut the export short (shutdown's time is up)
        self._ok = metrics.log_records_exported.labels("success")
        self._failed = metrics.log_records_exported.labels("failure")

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export a batch (what this thread logs meanwhile is not exported) and count it."""
        self._taken(len(batch))
        _local.busy, _local.exporter = True, self
        try:
            result = self.inner.export(batch)
        except Exception:
            self._failed.inc(len(batch))
            raise
        finally:
            _local.busy, _local.exporter = False, None
        ok = result == LogRecordExportResult.SUCCESS
        (self._ok if ok else self._failed).inc(len(batch))
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down, once (it stops retrying)."""
        with self._stop_lock:
            stopped, self._stopped = self._stopped, True
        if not stopped:
            self.inner.shutdown()  # type: ignore[no-untyped-call]

    def abort(self) -> None:
        """Stop an export still retrying (when shutdown's time is up)."""
        self.aborted = True
        self.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


class _QuietRetries(logging.Filter):
    """On the exporter's logger, keeps our exports' retry notices (below ERROR) and anything
    after `abort()` off the app's stderr: each batch's outcome is counted, and a batch that
    finally fails is still logged as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a retry notice of our export, or any line of an aborted one."""
        exporter = getattr(_local, "exporter", None)
        if exporter is None:
            return True  # not our export: the app's own OTLPLogExporter says what it says
        return record.levelno >= logging.ERROR and not exporter.aborted


_QUIET = _QuietRetries()


class BoundedLogProcessor(BatchLogRecordProcessor):
    """OpenTelemetry's batch processor behind a gate that counts what it holds: a record
    that finds `max_queue_size` records waiting is dropped and counted, where OpenTelemetry's
    would drop the oldest with a warning and count nothing we can read."""

    def __init__(
        self, exporter: LogRecordExporter, metrics: SdkMetrics, max_queue_size: int
    ) -> None:
        self._lock = threading.Lock()
        self._held = 0
        self._max = max_queue_size
        self._emitted = metrics.log_records_emitted
        self._dropped = metrics.log_records_dropped
        counting = self.exporter = CountingLogExporter(exporter, metrics, self._taken)
        batch = env_int("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512)
        super().__init__(
            counting,
            max_queue_size=max_queue_size,
            max_export_batch_size=min(batch, max_queue_size),
        )

    def _taken(self, count: int) -> None:
        with self._lock:
            self._held = max(0, self._held - count)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue the record, or drop and count it when the queue is full."""
        with self._lock:
            full = self._held >= self._max
            if not full:
                self._held += 1
        if full:
            self._dropped.inc()
            return
        self._emitted.inc()
        super().on_emit(log_record)


class LogExport:
    """The log export `init()` set up: a provider over a bounded processor and an exporter."""

    def __init__(
        self,
        settings: Settings,
        resource: Resource,
        metrics: SdkMetrics,
        exporter: LogRecordExporter | None = None,
    ) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            exporter = OTLPLogExporter(
                endpoint=settings.logs_endpoint, headers=dict(settings.headers)
            )
        queue = env_int("OTEL_BLRP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE)
        # The spans' resource, and the host: a log line is read beside its machine's.
        host = Resource({"host.name": socket.gethostname()})
        # At exit, our close (bounded by its timeout), not the provider's own (up to 30 s).
        self.provider = LoggerProvider(resource=host.merge(resource), shutdown_on_exit=False)
        processor = BoundedLogProcessor(exporter, metrics, queue)
        self.provider.add_log_record_processor(processor)
        self.exporter = processor.exporter
        self.handler = OtlpLogHandler(self.provider, settings.logs_level)
        logging.getLogger(EXPORTER_LOGGER).addFilter(_QUIET)  # once: filters are a set

    def start(self) -> None:
        """Send records to this export from now on (replacing any earlier one)."""
        global _handler
        _install_hook()
        _handler = self.handler
        atexit.register(self.close)

    def flush(self, timeout_s: float) -> bool:
        """Export what is queued; False if it could not all be sent."""
        return bool(self.provider.force_flush(int(timeout_s * 1000)))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking records, export what is queued within `timeout_s` (then an export
        still retrying a server that does not answer is cut short) and stop the exporter."""
        global _handler
        atexit.unregister(self.close)
        if _handler is self.handler:
            _handler = None
        timer = threading.Timer(timeout_s, self.exporter.abort)
        timer.daemon = True
        timer.start()
        try:
            self.provider.shutdown()
        finally:
            timer.cancel()
