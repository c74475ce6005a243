"""`init()`, `shutdown()`, `flush()`, `registry()`: the SDK's one piece of process state.

Like OpenTelemetry's global tracer provider, the SDK's state is process-wide (an app calls
`init()` once at start-up); everything else in the SDK reads it through `current()`, which is
`None` before `init()` so every entry point can be a cheap no-op. We do not replace the global
OpenTelemetry provider: the host app may have its own. Spans still nest across both, because
the active-span context is shared.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from watchkeeper.jsonlog import install_json_logging, uninstall_json_logging
from watchkeeper.sdk._guard_config import GUARDS
from watchkeeper.sdk._guard_config import load as load_guard_config
from watchkeeper.sdk._safe import REPORTER, report_failure
from watchkeeper.sdk._settings import Settings, resolve
from watchkeeper.sdk.redact import Redactor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from prometheus_client import CollectorRegistry

    from watchkeeper.sdk._logs import LogExport
    from watchkeeper.sdk._metrics import SdkMetrics
    from watchkeeper.sdk._metrics_push import MetricsPusher

INSTRUMENTATION_NAME = "watchkeeper"
#: The logger whose records `init(json_logs=True)` writes as JSON: the SDK's own. The app's
#: loggers, the root's level and its handlers stay as the app set them.
SDK_LOGGER = "watchkeeper"


@dataclass(slots=True)
class Runtime:
    """What `init()` built: settings, the tracer, the metrics, the redactor, the log export."""

    settings: Settings
    provider: TracerProvider
    tracer: Tracer
    registry: CollectorRegistry
    metrics: SdkMetrics
    redactor: Callable[[str], str] | None
    key: tuple[Any, ...]
    pusher: MetricsPusher | None = None  # init(metrics="otlp")
    logs: LogExport | None = None  # init(logs="otlp")

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush and stop the log export (within `timeout_s`), the tracer provider and the
        metrics pusher."""
        if self.logs is not None:
            self.logs.close(timeout_s)
        self.provider.shutdown()
        if self.pusher is not None:
            self.pusher.stop()


_current: Runtime | None = None
_lock = threading.Lock()


def current() -> Runtime | None:
    """The SDK's state, or None before `init()` (every entry point is then a no-op)."""
    return _current


def init(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    project: str | None = None,
    environment: str | None = None,
    sample_rate: float = 1.0,
    capture_content: bool = False,
    redact: bool = True,
    redaction_patterns: Sequence[str | re.Pattern[str]] = (),
    json_logs: bool = True,
    log_level: str = "INFO",
    registry: CollectorRegistry | None = None,
    exporter: SpanExporter | None = None,
    span_processor: SpanProcessor | None = None,
    raise_errors: bool | None = None,
    guard_config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    metrics: Literal["prometheus", "otlp"] = "prometheus",
    metrics_interval_s: float = 15.0,
    logs: Literal["otlp", "off"] | None = None,
    logs_level: str | None = None,
) -> None:
    """Start the SDK: tracing to the Watchkeeper server (OTLP/HTTP), metrics, JSON logs.

    Metrics are recorded on a Prometheus registry (serve it on /metrics); `metrics="otlp"`
    also pushes it to the server's `/v1/metrics` every `metrics_interval_s`.

    Guards take the operator's overrides of their settings from the environment and from
    `guard_config` (a JSON/YAML file's path, or its content as a mapping; default: the file
    `WATCHKEEPER_GUARD_CONFIG` names), until the next `init()` or `shutdown()`.
    `json_logs` writes the SDK's own records (the `watchkeeper` logger, at `log_level`) as
    JSON lines with trace and span ids; the app's logging (root level, handlers) is not
    touched: put `JsonFormatter` on the app's handlers for the same shape.

    `logs="otlp"` (default; `WATCHKEEPER_LOGS`, or `OTEL_LOGS_EXPORTER=none` for off) also
    sends the app's `logging` records at `logs_level` (default INFO, `WATCHKEEPER_LOGS_LEVEL`)
    or above to the server's `/v1/logs`, with the trace and span id of the active span, from
    a bounded queue that drops (and counts) rather than block; records the app's loggers do
    not let through (Python's root is at WARNING until the app configures it) are not sent.
    `logs="off"`: no handler, no request. `flush()` and `shutdown()` send what is queued.

    Calling it again with the same arguments does nothing; with different ones it flushes and
    replaces the previous set-up. It never raises into the app unless `raise_errors` is on.
    """
    global _current
    if raise_errors is not None:
        REPORTER.raise_errors = raise_errors
    try:
        settings = resolve(
            os.environ,
            service_name=service_name,
            endpoint=endpoint,
            api_key=api_key,
            project=project,
            environment=environment,
            sample_rate=sample_rate,
            capture_content=capture_content,
            redact=redact,
            redaction_patterns=redaction_patterns,
            json_logs=json_logs,
            log_level=log_level,
            raise_errors=raise_errors,
            logs=logs,
            logs_level=logs_level,
        )
        REPORTER.raise_errors = settings.raise_errors
        overrides, problems = load_guard_config(os.environ, guard_config)
        if settings.disabled:  # no telemetry; the operator's guard settings still hold
            shutdown()
            GUARDS.apply(overrides, problems)
            return
        reg = registry if registry is not None else _default_registry()
        push = metrics_interval_s if metrics == "otlp" else None
        key = (settings, overrides, id(reg), id(exporter), id(span_processor), push)
        with _lock:
            if _current is not None and _current.key == key:
                return
            previous, _current = _current, None
            if previous is not None:
                previous.close()
            _current = _build(settings, reg, exporter, span_processor, key, push)
        GUARDS.apply(overrides, problems)  # warnings once the SDK's error counter is set
    except Exception as exc:
        report_failure("init", exc)


def _build(
    settings: Settings,
    reg: CollectorRegistry,
    exporter: SpanExporter | None,
    span_processor: SpanProcessor | None,
    key: tuple[Any, ...],
    push_interval_s: float | None = None,
) -> Runtime:
    from watchkeeper.sdk._metrics import metrics_for

    metrics = metrics_for(reg)
    provider = _provider(settings, exporter, span_processor, metrics)
    REPORTER.reset()
    REPORTER.counter = lambda kind: metrics.sdk_errors.labels(kind).inc()
    if settings.json_logs:
        install_json_logging(settings.service_name, settings.log_level, logger=SDK_LOGGER)
    redactor = Redactor(settings.redaction_patterns) if settings.redact else None
    pusher = None
    if push_interval_s is not None:
        pusher = _pusher(settings, reg, provider, push_interval_s)
    log_export = None
    if settings.logs == "otlp":
        from watchkeeper.sdk._logs import LogExport

        log_export = LogExport(settings, provider.resource, metrics)
        log_export.start()
    return Runtime(
        settings=settings,
        provider=provider,
        tracer=provider.get_tracer(INSTRUMENTATION_NAME),
        registry=reg,
        metrics=metrics,
        redactor=redactor,
        key=key,
        pusher=pusher,
        logs=log_export,
    )


def _pusher(
    settings: Settings, reg: CollectorRegistry, provider: TracerProvider, interval_s: float
) -> MetricsPusher:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    from watchkeeper.sdk._metrics_push import MetricsPusher

    exporter = OTLPMetricExporter(
        endpoint=f"{settings.endpoint}/v1/metrics", headers=dict(settings.headers)
    )
    pusher = MetricsPusher(reg, exporter, provider.resource, interval_s)
    pusher.start()
    return pusher


def _provider(
    settings: Settings,
    exporter: SpanExporter | None,
    span_processor: SpanProcessor | None,
    metrics: SdkMetrics,
) -> TracerProvider:
    # Imported here, not at module level, so `import watchkeeper` stays cheap.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from watchkeeper.model import conventions as c
    from watchkeeper.sdk._export import CountingBatchProcessor
    from watchkeeper.sdk._sampling import ParentOrRatio

    attrs: dict[str, str] = {c.SERVICE_NAME: settings.service_name}
    if settings.environment:
        attrs[c.DEPLOYMENT_ENVIRONMENT_NAME] = settings.environment
    if settings.project:
        attrs[c.WK_PROJECT] = settings.project
    sampler = ParentOrRatio(settings.sample_rate)
    provider = TracerProvider(resource=Resource.create(attrs), sampler=sampler)
    if span_processor is None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(
                endpoint=settings.traces_endpoint, headers=dict(settings.headers)
            )
        span_processor = CountingBatchProcessor(exporter, metrics)
    provider.add_span_processor(span_processor)
    return provider


def shutdown(timeout_s: float = 5.0) -> None:
    """Flush and stop the SDK; entry points become no-ops again until the next `init()`.

    The app's log records stop going to the export and what is queued of them is sent within
    `timeout_s`; then what is queued of the spans (OpenTelemetry's batch processor waits up
    to 30 s for a server that does not answer); queued feedback is then sent within what is
    left of `timeout_s`.
    """
    global _current
    deadline = time.monotonic() + timeout_s
    try:
        with _lock:
            previous, _current = _current, None
        GUARDS.apply({})  # guards run on their code's settings again
        if previous is not None:
            previous.close(timeout_s)
            REPORTER.counter = None
            if previous.settings.json_logs:
                uninstall_json_logging(SDK_LOGGER)
        _flush_hooks(deadline)
    except Exception as exc:
        report_failure("shutdown", exc)


def flush(timeout_s: float = 5.0) -> bool:
    """Export every finished span and queued log record, then send queued feedback; False if
    that took over `timeout_s` in all."""
    deadline = time.monotonic() + timeout_s
    rt = _current
    try:
        spans_ok = rt is None or bool(rt.provider.force_flush(int(timeout_s * 1000)))
        logs_ok = rt is None or rt.logs is None or rt.logs.flush(timeout_s)
        return _flush_hooks(deadline) and spans_ok and logs_ok
    except Exception as exc:
        report_failure("flush", exc)
        return False


#: Senders of the SDK's own queues besides the spans' (feedback scores), each waiting at most
#: the seconds it is given; a module registers its own when it is first imported, so the
#: runtime never imports one that was not used.
_FLUSH_HOOKS: list[Callable[[float], bool]] = []


def on_flush(hook: Callable[[float], bool]) -> None:
    """Have `flush` and `shutdown` also wait for `hook(timeout_s)` (True: all was sent)."""
    if hook not in _FLUSH_HOOKS:
        _FLUSH_HOOKS.append(hook)


def _flush_hooks(deadline: float) -> bool:
    """Wait, until `deadline` at most, for what the registered hooks still hold queued."""
    done = [hook(max(0.0, deadline - time.monotonic())) for hook in list(_FLUSH_HOOKS)]
    return all(done)


def registry() -> CollectorRegistry:
    """The Prometheus registry the SDK records its metrics on (the default one before init)."""
    rt = _current
    return rt.registry if rt is not None else _default_registry()


def _default_registry() -> CollectorRegistry:
    # prometheus_client costs ~60 ms to import: load it when metrics are first needed.
    from prometheus_client import REGISTRY

    return REGISTRY
