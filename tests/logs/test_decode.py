"""OTLP log requests decoded into log rows: what the OpenTelemetry Python SDK sends, and
OTLP/JSON with the values a careless sender puts in it."""

from __future__ import annotations

import logging

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._logs_decode import decode_logs, severity_of
from watchkeeper.model import MAX_TIME_NS

NOW = 1_750_000_000_000_000_000


def _sdk_body() -> tuple[bytes, str, str]:
    """A request as the Python SDK's OTLP exporter encodes it: two `logging` records, the
    second with an exception, written inside a span. Returns it, and the span's ids."""
    resource = Resource.create({"service.name": "checkout", "deployment.environment.name": "prod"})
    exporter = InMemoryLogRecordExporter()
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("test.logs.decode")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=logs)
    logger.addHandler(handler)
    tracer = TracerProvider(resource=resource).get_tracer("t")
    try:
        with tracer.start_as_current_span("work") as span:
            logger.warning("cache miss for %s", "user-7", extra={"cache.key": "u7"})
            try:
                raise KeyError("price")
            except KeyError:
                logger.exception("no price")
        ctx = span.get_span_context()
    finally:
        logger.removeHandler(handler)
        logs.shutdown()
    body = encode_logs(exporter.get_finished_logs()).SerializeToString()
    return body, f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def test_what_the_python_sdk_sends() -> None:
    body, trace_id, span_id = _sdk_body()
    out = decode_logs(body, "protobuf", "default", NOW)
    assert out.rejected == 0 and out.dropped_values == 0
    warn, error = out.records
    assert (warn.severity_number, warn.severity_text) == (13, "WARN")
    assert warn.body == "cache miss for user-7"
    assert (warn.trace_id, warn.span_id) == (trace_id, span_id)
    assert (warn.service, warn.environment, warn.project) == ("checkout", "prod", "default")
    assert warn.scope == "test.logs.decode"
    assert orjson.loads(warn.attributes)["cache.key"] == "u7"
    assert 0 < warn.time_ns <= warn.observed_ns < MAX_TIME_NS
    assert error.severity_number == 17
    attrs = orjson.loads(error.attributes)
    assert attrs["exception.type"] == "KeyError"
    assert "raise KeyError" in attrs["exception.stacktrace"]
    assert orjson.loads(error.resource)["service.name"] == "checkout"
    assert warn.log_id != error.log_id
    assert [r.log_id for r in decode_logs(body, "protobuf", "default", NOW + 1).records] == [
        warn.log_id,
        error.log_id,
    ]  # the same records again (a replay, a retry): the same ids


def _json(*records: dict[str, object], resource: list[dict[str, object]] | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": resource or []},
                    "scopeLogs": [{"scope": {"name": "app"}, "logRecords": list(records)}],
                }
            ]
        }
    )


def test_otlp_json_with_bad_values_loses_only_them() -> None:
    body = _json(
        {
            "timeUnixNano": "1750000000000000001",
            "severityNumber": "SEVERITY_NUMBER_ERROR2",
            "body": {"kvlistValue": {"values": [{"key": "q", "value": {"intValue": "7"}}]}},
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "attributes": [
                {"key": "big", "value": {"intValue": "1180591620717411303424"}},  # 2^70
                {"key": "ok", "value": {"boolValue": True}},
            ],
        },
        {"severityText": "warning", "body": {"stringValue": "no time at all"}},
        {"timeUnixNano": str(1 << 64 - 1), "body": {"stringValue": "year 2500"}},
        {"timeUnixNano": "1", "traceId": "abcd", "spanId": "eee19b7ec3c1b174"},
        {"timeUnixNano": [1]},
        resource=[
            {"key": "service.name", "value": {"stringValue": "api"}},
            {"key": "watchkeeper.project", "value": {"stringValue": "other"}},
        ],
    )
    out = decode_logs(body, "json", "default", NOW)
    assert out.rejected == 1  # a time that is no number
    assert "log records rejected" in out.error_message
    first, untimed, far, no_ids = out.records
    # year 2500 and 1970: stored at their observed time (here the time of receipt), flagged
    for record, why, sent in ((far, "future", 1 << 64 - 1), (no_ids, "past", 1)):
        assert (record.time_ns, record.observed_ns) == (NOW, NOW)
        attributes = orjson.loads(record.attributes)
        assert attributes["watchkeeper.time.adjusted"] == why
        assert attributes["watchkeeper.time.original_unix_nano"] == str(sent)
    assert (first.severity_number, first.time_ns, first.body) == (
        18,
        1750000000000000001,
        '{"q":7}',
    )
    assert (first.trace_id, first.span_id) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
    )
    assert orjson.loads(first.attributes) == {"ok": True}  # 2^70 costs its attribute only
    assert (untimed.time_ns, untimed.observed_ns, untimed.severity_number) == (NOW, NOW, 13)
    assert (no_ids.trace_id, no_ids.span_id) == ("", "")  # a 2-byte trace id costs the ids
    assert out.dropped_values == 3
    assert {r.project for r in out.records} == {"default"}  # a key's project holds
    assert {r.service for r in out.records} == {"api"}
    opened = decode_logs(body, "json", "default", NOW, from_resource=True)
    assert {r.project for r in opened.records} == {"other"}  # auth off: the resource says


@pytest.mark.parametrize("body", [b"\x0a\xff", b"[1]", b"{", b'{"resourceLogs": 3}'])
def test_what_is_not_a_logs_request_is_refused(body: bytes) -> None:
    encoding = "protobuf" if body.startswith(b"\x0a") else "json"
    with pytest.raises(DecodeError):
        decode_logs(body, encoding, "default", NOW)


@pytest.mark.parametrize(
    ("number", "text", "want"),
    [(9, "whatever", 9), (0, "WARNING", 13), (0, "CRITICAL", 21), (0, "Err", 17),
     (0, "notice", 10), (0, "", 0), (0, "verbose", 0), (30, "info", 9)],
)  # fmt: skip
def test_severity_from_the_number_or_the_text(number: int, text: str, want: int) -> None:
    assert severity_of(number, text) == want
