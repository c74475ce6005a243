"""init/shutdown/flush: no-op before init, idempotent init, cheap import, environment."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest

import watchkeeper
from watchkeeper.errors import ConfigError
from watchkeeper.sdk._settings import parse_headers, resolve

from .conftest import start_sdk

SERVER_MODULES = (
    "fastapi",
    "starlette",
    "duckdb",
    "pyarrow",
    "sqlalchemy",
    "pydantic",
    "uvicorn",
    "httpx",
)


def test_import_pulls_in_no_server_dependency() -> None:
    code = (
        "import sys, watchkeeper\n"
        f"bad = [m for m in {SERVER_MODULES!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_sorted_and_importable() -> None:
    assert watchkeeper.__all__ == sorted(watchkeeper.__all__)
    for name in watchkeeper.__all__:
        assert getattr(watchkeeper, name) is not None


def test_lazy_names_load_without_server_dependencies() -> None:
    code = (
        "import sys, watchkeeper\n"
        "watchkeeper.feedback, watchkeeper.instrument_openai, watchkeeper.instrument_anthropic\n"
        f"bad = [m for m in {SERVER_MODULES!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.fixture
def not_initialised() -> Iterator[None]:
    watchkeeper.shutdown()
    yield
    watchkeeper.shutdown()


def test_everything_is_a_noop_before_init(not_initialised: None) -> None:
    @watchkeeper.observe()
    def f(x: int) -> int:
        return x + 1

    @watchkeeper.observe()
    async def g() -> str:
        return "ok"

    @watchkeeper.observe()
    def gen() -> Iterator[int]:
        yield 1

    assert f(1) == 2
    assert asyncio.run(g()) == "ok"
    assert list(gen()) == [1]
    with watchkeeper.context(user_id="u"), watchkeeper.observe("x", kind="llm") as span:
        span.set_model("m")
        span.set_usage(1, 2)
        span.set_input("x")
        span.record_error(ValueError())
        assert (span.trace_id, span.span_id) == ("", "")
    assert watchkeeper.flush() is True


def test_init_twice_with_the_same_arguments_keeps_the_setup() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry

    from watchkeeper.sdk import _runtime

    exporter, registry = InMemorySpanExporter(), CollectorRegistry()
    processor = SimpleSpanProcessor(exporter)
    options: dict[str, object] = {"registry": registry, "span_processor": processor}
    watchkeeper.init("svc", json_logs=False, raise_errors=True, **options)  # type: ignore[arg-type]
    first = _runtime.current()
    watchkeeper.init("svc", json_logs=False, raise_errors=True, **options)  # type: ignore[arg-type]
    assert _runtime.current() is first
    other = start_sdk(environment="prod")
    assert _runtime.current() is not first
    with watchkeeper.observe("after-reinit"):
        pass
    assert other.names() == ["after-reinit"]
    assert exporter.get_finished_spans() == ()
    watchkeeper.shutdown()


def test_bad_settings_raise_under_tests_and_are_swallowed_otherwise() -> None:
    with pytest.raises(ConfigError, match="sample_rate"):
        watchkeeper.init("x", sample_rate=2.0, raise_errors=True, json_logs=False)
    watchkeeper.init("x", sample_rate=2.0, raise_errors=False, json_logs=False)
    watchkeeper.shutdown()


@pytest.mark.parametrize(
    ("env", "args", "endpoint", "traces"),
    [
        ({}, {}, "http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1/"}, {}, "http://h:1", "http://h:1/v1/traces"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:2/v1/traces"},
            {},
            "http://t:2",
            "http://t:2/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"},
            {"endpoint": "http://arg:3"},
            "http://arg:3",
            "http://arg:3/v1/traces",
        ),
    ],
)
def test_endpoint_precedence(
    env: dict[str, str], args: dict[str, str], endpoint: str, traces: str
) -> None:
    settings = resolve(env, **args)
    assert (settings.endpoint, settings.traces_endpoint) == (endpoint, traces)


def test_headers_api_key_and_service_from_environment() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "x-a=1,x-b=two%20words",
        "WATCHKEEPER_API_KEY": "wk_secret",
        "OTEL_SERVICE_NAME": "from-env",
        "WATCHKEEPER_RAISE_ERRORS": "1",
    }
    s = resolve(env, project="p1")
    assert s.headers == {
        "x-a": "1",
        "x-b": "two words",
        "authorization": "Bearer wk_secret",
        "x-watchkeeper-project": "p1",
    }
    assert (s.service_name, s.api_key, s.raise_errors) == ("from-env", "wk_secret", True)
    assert resolve(env, service_name="arg", api_key="k2").api_key == "k2"
    assert parse_headers("novalue,=x, k = v ") == {"k": "v"}


def test_otel_sdk_disabled_keeps_everything_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    from watchkeeper.sdk import _runtime

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    start_sdk()
    assert _runtime.current() is None
    with watchkeeper.observe("x") as span:
        assert span.trace_id == ""
