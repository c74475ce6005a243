"""OTLP/JSON test requests turned into the same requests in protobuf."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _set(value: Any, doc: dict[str, Any]) -> None:
    if "intValue" in doc:
        value.int_value = int(doc["intValue"])  # must fit int64 in protobuf
    elif "doubleValue" in doc:
        value.double_value = doc["doubleValue"]
    else:
        value.string_value = doc["stringValue"]


def to_protobuf(doc: dict[str, Any]) -> bytes:
    """An OTLP/JSON request (hex ids; string, int and double attributes) as protobuf."""
    msg = ExportTraceServiceRequest()
    for rs in doc["resourceSpans"]:
        out = msg.resource_spans.add()
        for a in rs.get("resource", {}).get("attributes", []):
            _set(out.resource.attributes.add(key=a["key"]).value, a["value"])
        for ss in rs["scopeSpans"]:
            scope = out.scope_spans.add()
            scope.scope.name = ss.get("scope", {}).get("name", "")
            scope.scope.version = ss.get("scope", {}).get("version", "")
            for s in ss["spans"]:
                span = scope.spans.add(
                    trace_id=bytes.fromhex(s["traceId"]),
                    span_id=bytes.fromhex(s["spanId"]),
                    name=s["name"],
                    start_time_unix_nano=int(s["startTimeUnixNano"]),
                    end_time_unix_nano=int(s["endTimeUnixNano"]),
                )
                for a in s.get("attributes", []):
                    _set(span.attributes.add(key=a["key"]).value, a["value"])
    return msg.SerializeToString()
