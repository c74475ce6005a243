"""JSON logs: one object per line with trace ids; init installs exactly one handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

import watchkeeper
from watchkeeper.jsonlog import install_json_logging, uninstall_json_logging

from .conftest import Sdk, start_sdk


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    install_json_logging("log-svc", "DEBUG", stream=out)
    yield out
    uninstall_json_logging()
    root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_trace_ids(sdk: Sdk, stream: io.StringIO) -> None:
    log = logging.getLogger("app.module")
    with watchkeeper.observe("work") as span:
        log.info("hello %s", "world", extra={"order_id": 7, "tags": ["a"]})
    log.warning("outside")
    inside, outside = lines(stream)
    assert inside["message"] == "hello world"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "app.module"
    assert inside["service"] == "log-svc"
    assert inside["trace_id"] == span.trace_id
    assert inside["span_id"] == span.span_id
    assert inside["extra"] == {"order_id": 7, "tags": ["a"]}
    assert datetime.fromisoformat(str(inside["timestamp"])).tzinfo is not None
    assert "trace_id" not in outside


def test_exceptions_are_structured(stream: io.StringIO) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("app").exception("failed")
    (record,) = lines(stream)
    exception = record["exception"]
    assert isinstance(exception, dict)
    assert exception["type"] == "KeyError"
    assert "Traceback" in exception["stacktrace"]


def test_repeated_init_keeps_one_handler() -> None:
    sdk_logger = logging.getLogger("watchkeeper")
    level = sdk_logger.level
    try:
        for env in ("a", "b", "b"):
            start_sdk(json_logs=True, environment=env)
        ours = [h for h in sdk_logger.handlers if getattr(h, "_watchkeeper_json_handler", False)]
        assert len(ours) == 1
        watchkeeper.shutdown()
        assert not [
            h for h in sdk_logger.handlers if getattr(h, "_watchkeeper_json_handler", False)
        ]
        assert sdk_logger.level == level and sdk_logger.propagate
    finally:
        watchkeeper.shutdown()
