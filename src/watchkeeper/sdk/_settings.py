"""The SDK's settings: `init()` arguments merged with the standard environment (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from watchkeeper.errors import ConfigError

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LOG_MODES = ("otlp", "off")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `init()` decided, resolved once; read by every other SDK module."""

    service_name: str
    endpoint: str  # base URL of the Watchkeeper server (no trailing slash)
    traces_endpoint: str  # full URL spans are POSTed to
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with every export
    api_key: str | None = None
    project: str | None = None
    environment: str | None = None
    sample_rate: float = 1.0
    capture_content: bool = False
    redact: bool = True
    redaction_patterns: tuple[str | re.Pattern[str], ...] = ()
    json_logs: bool = True
    log_level: str = "INFO"
    raise_errors: bool = False
    logs: str = "otlp"  # "otlp": the app's logging records go to logs_endpoint; "off"
    logs_level: str = "INFO"  # the least severe record exported
    logs_endpoint: str = DEFAULT_ENDPOINT + LOGS_PATH
    disabled: bool = False  # OTEL_SDK_DISABLED=true: init() leaves everything a no-op


def parse_headers(value: str) -> dict[str, str]:
    """Parse `OTEL_EXPORTER_OTLP_HEADERS` ("k1=v1,k2=v2", values URL-encoded)."""
    headers: dict[str, str] = {}
    for item in value.split(","):
        if "=" not in item:
            continue
        key, _, val = item.partition("=")
        if key.strip():
            headers[unquote(key.strip()).lower()] = unquote(val.strip())
    return headers


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def _endpoints(endpoint: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """(base, traces URL): an explicit endpoint wins, then the OTEL_* variables."""
    if endpoint:
        base = endpoint.rstrip("/")
        return base, base + TRACES_PATH
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    general = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip().rstrip("/")
    if traces:
        base = general or traces.removesuffix(TRACES_PATH).rstrip("/")
        return base, traces
    base = general or DEFAULT_ENDPOINT
    return base, base + TRACES_PATH


def resolve(
    env: Mapping[str, str],
    *,
    service_name: str | None = None,
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
    raise_errors: bool | None = None,
    logs: str | None = None,
    logs_level: str | None = None,
) -> Settings:
    """Merge `init()` arguments with the environment; raise ConfigError on a bad value."""
    if not 0.0 <= sample_rate <= 1.0:
        raise ConfigError(f"sample_rate={sample_rate!r}: give a fraction between 0.0 and 1.0")
    level = log_level.upper()
    if level not in _LEVELS:
        raise ConfigError(f"log_level={log_level!r}: use one of {', '.join(_LEVELS)}")
    for p in redaction_patterns:
        if isinstance(p, str):
            try:
                re.compile(p)
            except re.error as exc:
                raise ConfigError(f"redaction pattern {p!r} is not a valid regex: {exc}") from exc
    logs_mode, logs_lvl = _logs(env, logs, logs_level)
    base, traces = _endpoints(endpoint, env)
    headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    headers.update(parse_headers(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")))
    key = api_key or env.get("WATCHKEEPER_API_KEY") or None
    if key:
        headers["authorization"] = f"Bearer {key}"
    proj = project or env.get("WATCHKEEPER_PROJECT") or None
    if proj:
        headers["x-watchkeeper-project"] = proj
    return Settings(
        service_name=service_name or env.get("OTEL_SERVICE_NAME") or "unknown_service",
        endpoint=base,
        traces_endpoint=traces,
        headers=headers,
        api_key=key,
        project=proj,
        environment=environment or env.get("WATCHKEEPER_ENVIRONMENT") or None,
        sample_rate=float(sample_rate),
        capture_content=capture_content,
        redact=redact,
        redaction_patterns=tuple(redaction_patterns),
        json_logs=json_logs,
        log_level=level,
        raise_errors=bool(
            raise_errors if raise_errors is not None else _flag(env.get("WATCHKEEPER_RAISE_ERRORS"))
        ),
        logs=logs_mode,
        logs_level=logs_lvl,
        logs_endpoint=(
            base + LOGS_PATH
            if endpoint
            else env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip() or base + LOGS_PATH
        ),
        disabled=bool(_flag(env.get("OTEL_SDK_DISABLED"))),
    )


def _logs(env: Mapping[str, str], mode: str | None, level: str | None) -> tuple[str, str]:
    """(mode, level) of the log export: the arguments, else `WATCHKEEPER_LOGS` (or the standard
    `OTEL_LOGS_EXPORTER=none`) and `WATCHKEEPER_LOGS_LEVEL`, else "otlp" at INFO."""
    if mode is None:
        mode = env.get("WATCHKEEPER_LOGS", "").strip().lower() or None
    if mode is None and env.get("OTEL_LOGS_EXPORTER", "").strip().lower() == "none":
        mode = "off"
    mode = mode or "otlp"
    if mode not in _LOG_MODES:
        raise ConfigError(f"logs={mode!r}: use 'otlp' (send the app's logs) or 'off'")
    lvl = (level or env.get("WATCHKEEPER_LOGS_LEVEL", "").strip() or "INFO").upper()
    if lvl not in _LEVELS:
        raise ConfigError(f"logs_level={lvl!r}: use one of {', '.join(_LEVELS)}")
    return mode, lvl
