"""Decoding: encodings, content types, gzip limits, per-span rejection."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.ingest._otlp import to_protobuf
from watchkeeper.errors import DecodeError, PayloadTooLarge, UnsupportedContentType
from watchkeeper.ingest import RawSpan, decode, decompress, encoding_of
from watchkeeper.ingest._decode import count_protobuf, parse_protobuf, split
from watchkeeper.ingest._otlp_values import Encoding


def _pb_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add(key="service.name")
    kv.value.string_value = "svc"
    span = rs.scope_spans.add().spans.add(
        name="s", kind=2, start_time_unix_nano=5, end_time_unix_nano=9
    )
    span.trace_id, span.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    for key, field, value in [
        ("i", "int_value", 2**62),
        ("d", "double_value", 0.5),
        ("b", "bool_value", True),
        ("bytes", "bytes_value", b"\x00\x01"),
    ]:
        setattr(span.attributes.add(key=key).value, field, value)
    arr = span.attributes.add(key="arr").value.array_value.values
    arr.add(string_value="x")
    arr.add(int_value=3)
    kvl = span.attributes.add(key="kv").value.kvlist_value.values.add(key="inner")
    kvl.value.string_value = "v"
    ev = span.events.add(name="exception", time_unix_nano=7)
    ev.attributes.add(key="exception.type").value.string_value = "ValueError"
    span.links.add(trace_id=bytes([9] * 16), span_id=bytes([9] * 8))
    span.status.code = 2
    span.status.message = "bad"
    return request


def test_protobuf_values_of_every_kind() -> None:
    decoded = decode(_pb_request().SerializeToString(), "protobuf")
    (s,) = decoded.spans
    assert s.trace_id == bytes(range(1, 17)).hex() and s.span_id == "0102030405060708"
    assert s.attributes == {
        "i": 2**62,
        "d": 0.5,
        "b": True,
        "bytes": "AAE=",
        "arr": ["x", 3],
        "kv": {"inner": "v"},
    }
    assert s.span_kind == "server" and (s.status_code, s.status_message) == (2, "bad")
    assert s.events[0]["attributes"] == {"exception.type": "ValueError"}
    assert s.links[0]["span_id"] == "09" * 8
    assert s.resource.attributes == {"service.name": "svc"}


def test_json_numbers_as_strings_enums_as_names_and_unknown_fields() -> None:
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0102030405060708090a0b0c0d0e0f10",
                                "spanId": "0102030405060708",
                                "kind": "SPAN_KIND_CONSUMER",
                                "startTimeUnixNano": "1763900000000000000",
                                "endTimeUnixNano": 1763900000000000001,
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "9007199254740993"}},
                                    {"key": "f", "value": {"doubleValue": "NaN"}},
                                    {"key": "empty", "value": {}},
                                ],
                                "status": {"code": "STATUS_CODE_OK"},
                                "futureField": [1, 2],
                            }
                        ]
                    }
                ],
                "futureField": {},
            }
        ]
    }
    (s,) = decode(orjson.dumps(doc), "json").spans
    assert s.attributes["n"] == 9007199254740993  # beyond float precision: kept exact
    assert s.attributes["f"] != s.attributes["f"]  # NaN
    assert s.attributes["empty"] is None
    assert (s.span_kind, s.status_code, s.end_ns - s.start_ns) == ("consumer", 1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"traceId": "00" * 16}, "trace_id must be 16 non-zero bytes"),
        ({"traceId": "abc"}, "trace_id must be 16"),
        ({"spanId": "01" * 9}, "span_id must be 8"),
        ({"parentSpanId": "01"}, "parent_span_id must be 8"),
        ({"endTimeUnixNano": "1"}, "end_time_unix_nano is before"),
        ({"startTimeUnixNano": "0"}, "start_time_unix_nano is missing"),
        ({"startTimeUnixNano": "soon"}, "must be an integer"),
    ],
)
def test_bad_spans_are_rejected_alone(change: dict[str, str], message: str) -> None:
    good = {
        "traceId": "01" * 16,
        "spanId": "01" * 8,
        "startTimeUnixNano": "5",
        "endTimeUnixNano": "6",
    }
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [good, {**good, **change}]}]}]}
    decoded = decode(orjson.dumps(doc), "json")
    assert (decoded.accepted, decoded.rejected) == (1, 1)
    assert message in decoded.error_message


def test_cheap_protobuf_check_agrees_with_full_decode() -> None:
    request = _pb_request()
    bad = request.resource_spans[0].scope_spans[0].spans.add(name="bad")
    bad.trace_id = b"\x01" * 3
    full = decode(request.SerializeToString(), "protobuf")
    cheap = count_protobuf(parse_protobuf(request.SerializeToString()))
    assert (cheap.accepted, cheap.rejected, cheap.errors) == (1, 1, full.errors)


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"\xff\xff\xff", "protobuf", "not a valid OTLP protobuf"),
        (b"{nope", "json", "not valid JSON"),
        (b"[1, 2]", "json", "must be an object"),
        (b'{"resourceSpans": 3}', "json", "'resourceSpans' must be a list"),
    ],
)
def test_undecodable_requests(body: bytes, encoding: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(body, encoding)  # type: ignore[arg-type]


def test_content_types() -> None:
    assert encoding_of("application/x-protobuf") == "protobuf"
    assert encoding_of("application/protobuf") == "protobuf"
    assert encoding_of("Application/JSON; charset=utf-8") == "json"
    with pytest.raises(UnsupportedContentType):
        encoding_of("text/plain")
    with pytest.raises(UnsupportedContentType):
        encoding_of(None)


def test_decompress_limits_while_inflating() -> None:
    body = b"a" * 1000
    assert decompress(gzip.compress(body), "gzip", 1000) == body
    assert decompress(zlib.compress(body), "deflate", 1000) == body
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(body), "gzip", 999)
    with pytest.raises(PayloadTooLarge):
        decompress(body, None, 999)
    with pytest.raises(DecodeError, match="truncated"):
        decompress(gzip.compress(body)[:-12], "gzip", 1000)
    with pytest.raises(DecodeError, match="not valid gzip"):
        decompress(b"plain", "gzip", 1000)
    with pytest.raises(UnsupportedContentType):
        decompress(body, "br", 1000)


def _two_resources(n: int) -> dict[str, Any]:
    def group(service: str, first: int) -> dict[str, Any]:
        spans = [
            {
                "traceId": f"{first + i + 1:032x}",
                "spanId": f"{first + i + 1:016x}",
                "name": f"s{first + i}",
                "startTimeUnixNano": "1764000000000000000",
                "endTimeUnixNano": "1764000000000001000",
                "attributes": [{"key": "i", "value": {"intValue": str(first + i)}}],
            }
            for i in range(n)
        ]
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
        scope = {"scope": {"name": f"scope-{service}", "version": "1"}, "spans": spans}
        return {"resource": resource, "scopeSpans": [scope]}

    return {"resourceSpans": [group("a", 0), group("b", 10_000)]}


def _view(spans: list[RawSpan]) -> list[tuple[str, str, Any, str]]:
    return [
        (s.span_id, s.name, s.resource.attributes["service.name"], s.resource.scope_name)
        for s in spans
    ]


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_split_keeps_every_span_under_its_resource_and_scope(encoding: Encoding) -> None:
    body = orjson.dumps(_two_resources(7))
    if encoding == "protobuf":  # the same request through the protobuf JSON mapping
        body = to_protobuf(orjson.loads(body))
    whole = decode(body, encoding)
    parts = split(body, encoding, 3)
    assert [decode(p, encoding).accepted for p in parts] == [3, 3, 3, 3, 2]
    pieces = [s for p in parts for s in decode(p, encoding).spans]
    assert _view(pieces) == _view(whole.spans)
    assert [s.attributes for s in pieces] == [s.attributes for s in whole.spans]
