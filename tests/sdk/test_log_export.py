"""The SDK sends the app's `logging` records over OTLP (issue 12): to a real server, found
again through `/api/v1/logs`; and against a receiver that can be slow, or no server at all."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import watchkeeper
from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.errors import ConfigError
from watchkeeper.sdk import _logs
from watchkeeper.sdk._logs import severity_number
from watchkeeper.sdk._settings import resolve
from watchkeeper.server._services import Services
from watchkeeper.server.app import build_services, create_app

from ._servers import LogReceiver
from .conftest import Sdk, start_sdk

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    """Each test ends with the SDK shut down and the loggers it touched as they were."""
    names = ("shop", "urllib3", "opentelemetry.test", "watchkeeper.sdk.test")
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    watchkeeper.shutdown()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _server(data_dir: Path) -> Iterator[tuple[str, Services]]:
    overrides = {"server": {"data_dir": str(data_dir), "port": 0}, "auth": {"required": False}}
    config = load_config(env={}, overrides=overrides)
    svc = build_services(config)
    with serve_in_thread(create_app(config, services=svc), name="sdk-logs-server") as url:
        yield url, svc


def _found(url: str, svc: Services, **params: Any) -> list[dict[str, Any]]:
    assert svc.logs_ingest.flush(30)
    r = httpx.get(f"{url}/api/v1/logs", params={"range": "1h", **params}, timeout=30)
    assert r.status_code == 200, r.text
    records: list[dict[str, Any]] = r.json()["records"]
    return records


def _shop() -> logging.Logger:
    log = logging.getLogger("shop")
    log.setLevel(logging.DEBUG)  # the app lets its records through; the SDK's level decides
    return log


def _sample(sdk: Sdk, name: str, labels: dict[str, str] | None = None) -> float:
    return sdk.metric(name, labels) or 0.0


def test_a_record_logged_in_a_span_arrives_with_its_ids_severity_and_fields(
    tmp_path: Path,
) -> None:
    with _server(tmp_path / "data") as (url, svc):
        sdk = start_sdk(endpoint=url, environment="test")
        log = _shop()
        with watchkeeper.observe("checkout") as span:
            log.info("order %s placed", 42, extra={"order_id": 42, "cart": {"items": 3}})
            log.debug("below the default level: not sent")
        log.warning({"event": "stock low", "sku": "A-1", "left": 2})
        assert watchkeeper.flush(10)
        records = _found(url, svc, service="test-svc")
    warning, info = records
    assert info["body"] == "order 42 placed"
    assert (info["trace_id"], info["span_id"]) == (span.trace_id, span.span_id)
    assert (info["severity"], info["severity_number"], info["severity_text"]) == (
        "info", 9, "INFO",
    )  # fmt: skip
    assert info["scope"] == "shop" and info["environment"] == "test"
    assert info["host"] == socket.gethostname()
    assert info["attributes"]["order_id"] == 42
    assert info["attributes"]["cart"] == {"items": 3}
    assert info["attributes"]["code.function.name"] == (
        "test_a_record_logged_in_a_span_arrives_with_its_ids_severity_and_fields"
    )
    # Outside a span: no ids; a dict logged stays structured.
    assert warning["trace_id"] == "" and warning["severity_number"] == 13
    assert warning["severity_text"] == "WARN"
    assert warning["body"] == '{"event":"stock low","sku":"A-1","left":2}'
    assert _sample(sdk, "watchkeeper_sdk_log_records_exported_total", {"result": "success"}) == 2


def test_an_exception_logged_arrives_with_its_exception_attributes(tmp_path: Path) -> None:
    with _server(tmp_path / "data") as (url, svc):
        start_sdk(endpoint=url)
        with watchkeeper.observe("pay"):
            try:
                raise TimeoutError("payment gateway did not answer")
            except TimeoutError:
                _shop().exception("payment failed")
            try:
                raise ConfigError("bad value")
            except ConfigError as exc:
                _shop().error("config: %s", exc, exc_info=exc)
        assert watchkeeper.flush(10)
        config, payment = _found(url, svc, severity="error")
    assert payment["body"] == "payment failed" and payment["severity"] == "error"
    attrs = payment["attributes"]
    assert attrs["exception.type"] == "TimeoutError"
    assert attrs["exception.message"] == "payment gateway did not answer"
    assert 'raise TimeoutError("payment gateway did not answer")' in attrs["exception.stacktrace"]
    assert config["attributes"]["exception.type"] == "watchkeeper.errors.ConfigError"


def _dead_endpoint() -> str:
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_the_app_never_sees_an_exception_when_the_server_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "1")
    sdk = start_sdk(endpoint=_dead_endpoint())  # raise_errors: an SDK failure would raise
    for i in range(5):
        _shop().error("order %d failed", i)
    watchkeeper.flush(10)
    assert _sample(sdk, "watchkeeper_sdk_log_records_emitted_total") == 5
    assert _sample(sdk, "watchkeeper_sdk_log_records_exported_total", {"result": "failure"}) == 5
    assert _sample(sdk, "watchkeeper_sdk_log_records_exported_total", {"result": "success"}) == 0
    assert _sample(sdk, "watchkeeper_sdk_errors_total", {"kind": "log export"}) == 0


def test_a_full_queue_drops_and_counts_rather_than_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "8")
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "4")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "60")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "60000")  # only a full batch wakes it
    with LogReceiver(hold=True) as receiver:
        sdk = start_sdk(endpoint=receiver.url)
        log = _shop()
        for i in range(4):  # a full batch: the exporter takes it and waits on the server
            log.info("first %d", i)
        assert receiver.started.acquire(timeout=30)
        for i in range(50):  # returns while the server holds the export: 8 queue, 42 drop
            log.info("later %d", i)
        assert _sample(sdk, "watchkeeper_sdk_log_records_dropped_total") == 42
        assert _sample(sdk, "watchkeeper_sdk_log_records_emitted_total") == 12
        receiver.release()
        assert watchkeeper.flush(30)
    assert receiver.bodies() == [f"first {i}" for i in range(4)] + [f"later {i}" for i in range(8)]
    assert _sample(sdk, "watchkeeper_sdk_log_records_exported_total", {"result": "success"}) == 12


def test_init_twice_sends_each_record_once() -> None:
    with LogReceiver() as receiver:
        start_sdk(endpoint=receiver.url)
        start_sdk(endpoint=receiver.url)  # a new registry: a different set-up, replaced
        watchkeeper.init("test-svc", endpoint=receiver.url, environment="b", json_logs=False)
        watchkeeper.init("test-svc", endpoint=receiver.url, environment="b", json_logs=False)
        _shop().warning("once")
        assert watchkeeper.flush(10)
    assert receiver.bodies() == ["once"]
    assert logging.getLogger().handlers == [] or all(
        not isinstance(h, _logs.OtlpLogHandler) for h in logging.getLogger().handlers
    )


@pytest.mark.parametrize("how", ["argument", "env", "otel-env"])
def test_off_means_no_handler_and_no_request(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    options: dict[str, Any] = {}
    if how == "argument":
        options["logs"] = "off"
    elif how == "env":
        monkeypatch.setenv("WATCHKEEPER_LOGS", "off")
    else:
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    handlers = list(logging.getLogger().handlers)
    with LogReceiver() as receiver:
        sdk = start_sdk(endpoint=receiver.url, **options)
        _shop().error("not sent")
        assert watchkeeper.flush(10)
        assert _logs.current_handler() is None
        assert receiver.started.acquire(timeout=0.5) is False
    assert receiver.requests == [] and logging.getLogger().handlers == handlers
    assert _sample(sdk, "watchkeeper_sdk_log_records_emitted_total") == 0


def test_the_exporters_own_records_never_loop_back() -> None:
    with LogReceiver() as receiver:
        start_sdk(endpoint=receiver.url, logs_level="DEBUG")
        # urllib3 logs each connection the exporter opens, on the export thread: were it
        # exported, the next export would carry it, and so on for ever.
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
        logging.getLogger("opentelemetry.test").setLevel(logging.DEBUG)
        logging.getLogger("watchkeeper.sdk.test").setLevel(logging.DEBUG)
        _shop().info("first")
        assert watchkeeper.flush(10)
        logging.getLogger("opentelemetry.test").warning("the exporter's own")
        logging.getLogger("watchkeeper.sdk.test").warning("the SDK's own")
        _shop().info("second")
        assert watchkeeper.flush(10)
        assert watchkeeper.flush(10)
    assert [(scope, r.body.string_value) for scope, r in receiver.records()] == [
        ("shop", "first"),
        ("shop", "second"),
    ]


def test_records_below_the_level_or_that_the_app_filters_are_not_sent() -> None:
    with LogReceiver() as receiver:
        start_sdk(endpoint=receiver.url, logs_level="WARNING")
        log = _shop()
        log.info("below the level")
        log.warning("sent")
        logging.getLogger("quiet.app").warning("its logger is disabled")
        logging.getLogger("quiet.app").disabled = True
        logging.getLogger("quiet.app").warning("its logger is disabled")
        logging.getLogger("quiet.app").disabled = False
        assert watchkeeper.flush(10)
    assert receiver.bodies() == ["sent", "its logger is disabled"]


def test_settings_of_the_log_export() -> None:
    s = resolve({}, endpoint="http://h:1/")
    assert (s.logs, s.logs_level, s.logs_endpoint) == ("otlp", "INFO", "http://h:1/v1/logs")
    env = {
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/custom",
        "WATCHKEEPER_LOGS_LEVEL": "error",
    }
    s = resolve(env)
    assert (s.logs_endpoint, s.logs_level) == ("http://c:4318/custom", "ERROR")
    assert resolve({"WATCHKEEPER_LOGS": "off"}, logs="otlp").logs == "otlp"  # argument wins
    assert resolve({"OTEL_LOGS_EXPORTER": "none"}).logs == "off"
    with pytest.raises(ConfigError, match="'otlp'"):
        resolve({"WATCHKEEPER_LOGS": "loki"})
    with pytest.raises(ConfigError, match="logs_level"):
        resolve({}, logs_level="LOUD")


LEVELS = [(1, 1), (5, 2), (10, 5), (15, 7), (20, 9), (25, 11), (30, 13), (40, 17), (50, 21),
          (60, 24), (0, 0)]  # fmt: skip


@pytest.mark.parametrize(("levelno", "number"), LEVELS)
def test_python_levels_map_to_otel_severity_numbers(levelno: int, number: int) -> None:
    assert severity_number(levelno) == number


def test_a_value_no_exporter_can_encode_is_sent_as_text() -> None:
    with LogReceiver() as receiver:
        start_sdk(endpoint=receiver.url)
        _shop().warning(
            "odd values", extra={"big": 2**70, "obj": object(), "bad": "a\udcffb", "n": None}
        )
        assert watchkeeper.flush(10)
    ((_, record),) = receiver.records()
    attrs = {kv.key: kv.value for kv in record.attributes}
    assert attrs["big"].string_value == str(2**70)
    assert attrs["obj"].string_value.startswith("<object object at")
    assert attrs["bad"].string_value == "a?b"
    assert "n" not in attrs


def test_records_logged_just_before_the_app_exits_are_sent() -> None:
    script = textwrap.dedent(
        """
        import logging, sys, watchkeeper
        watchkeeper.init("exiting-app", endpoint=sys.argv[1])
        logging.getLogger("app").error("the last words")
        """
    )  # no shutdown(): the SDK sends what is queued at exit
    with LogReceiver() as receiver:
        done = subprocess.run(
            [sys.executable, "-c", script, receiver.url], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert receiver.bodies() == ["the last words"]


def test_a_bad_queue_setting_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "lots")
    assert _logs.env_int("OTEL_BLRP_MAX_QUEUE_SIZE", 2048) == 2048
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "0")
    assert _logs.env_int("OTEL_BLRP_MAX_QUEUE_SIZE", 2048) == 2048
    with LogReceiver() as receiver:
        start_sdk(endpoint=receiver.url)
        _shop().warning("still sent")
        assert watchkeeper.flush(10)
    assert receiver.bodies() == ["still sent"]


def test_records_of_a_logger_that_does_not_propagate_are_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # json_logs puts the JSON handler on the `watchkeeper` logger and stops it propagating
    # (the demo logs there): its records are sent all the same, the SDK's own are not.
    with LogReceiver() as receiver:
        start_sdk(endpoint=receiver.url, json_logs=True)
        logging.getLogger("watchkeeper.demo").info("rag answered")
        logging.getLogger("watchkeeper.sdk").warning("the SDK's own notice")
        assert watchkeeper.flush(10)
    assert [(scope, r.body.string_value) for scope, r in receiver.records()] == [
        ("watchkeeper.demo", "rag answered")
    ]
    printed = capsys.readouterr().err
    assert '"message": "rag answered"' in printed  # and still written as JSON
