"""Decoding OTLP trace requests (protobuf and OTLP/JSON) into plain Python spans.

Pure functions: bytes in, `RawSpan`s out. Request-level problems raise `DecodeError`;
per-span problems (bad id, end before start, a time past int64) reject that span only and
are counted for the OTLP `partial_success` answer; a bad attribute value (an OTLP/JSON
`intValue` outside int64) costs that attribute only and is reported as a warning
(`partial_success` with `rejected_spans` 0, as the OTLP spec provides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._otlp_values import (
    Encoding,
    Losses,
    json_attrs,
    json_field,
    json_id,
    json_int,
    json_list,
    pb_attrs,
)
from watchkeeper.model import MAX_TIME_NS

_SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_KIND_NAMES = {f"SPAN_KIND_{k.upper()}": i for i, k in enumerate(_SPAN_KINDS)}


@dataclass(slots=True)
class Resource:
    """The resource and instrumentation scope shared by a group of spans."""

    attributes: dict[str, Any]
    scope_name: str = ""
    scope_version: str = ""


@dataclass(slots=True)
class RawSpan:
    """One decoded, validated span, before normalization."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    resource: Resource

    @property
    def span_kind(self) -> str:
        """The span kind as our lowercase name ("internal" when unspecified)."""
        kind = _SPAN_KINDS[self.kind] if 0 <= self.kind < len(_SPAN_KINDS) else "internal"
        return "internal" if kind == "unspecified" else kind


@dataclass(slots=True)
class Decoded(Losses):
    """A decoded request: its valid spans and what was rejected and why."""

    spans: list[RawSpan] = field(default_factory=list)
    accepted: int = 0  # valid spans (also set by the cheap check, which keeps no spans)


def decode(body: bytes, encoding: Encoding) -> Decoded:
    """Decode a whole `ExportTraceServiceRequest` into validated spans."""
    if encoding == "protobuf":
        return _decode_protobuf(parse_protobuf(body))
    return _decode_json(parse_json(body))


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse the protobuf request; `DecodeError` when it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a valid OTLP protobuf request: {exc}") from None


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse the OTLP/JSON request; `DecodeError` when it is not a JSON object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("OTLP/JSON body must be an object with 'resourceSpans'")
    return doc


def split(body: bytes, encoding: Encoding, max_spans: int) -> list[bytes]:
    """The request as requests of at most `max_spans` spans each, in order, every span under
    its own resource and scope (pure). Bounds what one worker decodes and one batch holds:
    one 16 MB request of 320k spans took the server to 980 MB in one piece."""
    if encoding == "protobuf":
        return _split_protobuf(parse_protobuf(body), max_spans)
    return _split_json(parse_json(body), max_spans)


def _split_protobuf(request: ExportTraceServiceRequest, max_spans: int) -> list[bytes]:
    parts: list[bytes] = []
    part, room = ExportTraceServiceRequest(), max_spans
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            spans, i = ss.spans, 0
            while i < len(spans):
                if not room:
                    parts.append(part.SerializeToString())
                    part, room = ExportTraceServiceRequest(), max_spans
                out_rs = part.resource_spans.add(schema_url=rs.schema_url)
                out_rs.resource.CopyFrom(rs.resource)
                out_ss = out_rs.scope_spans.add(schema_url=ss.schema_url)
                out_ss.scope.CopyFrom(ss.scope)
                take = spans[i : i + room]
                out_ss.spans.extend(take)
                i += len(take)
                room -= len(take)
    if room < max_spans:
        parts.append(part.SerializeToString())
    return parts


def _split_json(doc: dict[str, Any], max_spans: int) -> list[bytes]:
    parts: list[bytes] = []
    groups: list[dict[str, Any]] = []
    room = max_spans
    for rs in json_list(doc, "resourceSpans", "resource_spans"):
        scopes = json_list(rs, "scopeSpans", "scope_spans") or json_list(
            rs, "instrumentationLibrarySpans", "instrumentation_library_spans"
        )
        for ss in scopes:
            spans, i = json_list(ss, "spans", "spans"), 0
            while i < len(spans):
                if not room:
                    parts.append(orjson.dumps({"resourceSpans": groups}))
                    groups, room = [], max_spans
                take = spans[i : i + room]
                scope = {k: v for k, v in ss.items() if k != "spans"} | {"spans": take}
                rest = {k: v for k, v in rs.items() if k not in _SCOPE_LISTS}
                groups.append(rest | {"scopeSpans": [scope]})
                i += len(take)
                room -= len(take)
    if groups:
        parts.append(orjson.dumps({"resourceSpans": groups}))
    return parts


_SCOPE_LISTS = frozenset(
    {"scopeSpans", "scope_spans", "instrumentationLibrarySpans", "instrumentation_library_spans"}
)


# --- validation shared by both encodings --------------------------------------------------


def span_problem(trace_id: bytes, span_id: bytes, parent: bytes, start: int, end: int) -> str:
    """Why a span must be rejected, or "" when it is fine."""
    if len(trace_id) != 16 or not any(trace_id):
        return f"trace_id must be 16 non-zero bytes (got {len(trace_id)} bytes)"
    if len(span_id) != 8 or not any(span_id):
        return f"span_id must be 8 non-zero bytes (got {len(span_id)} bytes)"
    if parent and len(parent) != 8:
        return f"parent_span_id must be 8 bytes or empty (got {len(parent)} bytes)"
    if start <= 0:
        return "start_time_unix_nano is missing"
    if end < start:
        return "end_time_unix_nano is before start_time_unix_nano"
    if end > MAX_TIME_NS:
        return f"end_time_unix_nano {end} is out of range (after 2262-04-11, the int64 limit)"
    return ""


def count_protobuf(request: ExportTraceServiceRequest) -> Decoded:
    """Validate ids and times of every span without converting attributes (the cheap check)."""
    out = Decoded()
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                problem = span_problem(
                    s.trace_id,
                    s.span_id,
                    s.parent_span_id,
                    s.start_time_unix_nano,
                    s.end_time_unix_nano,
                )
                if problem:
                    out.reject(problem)
                else:
                    out.accepted += 1
    return out


# --- protobuf -----------------------------------------------------------------------------


def _pb_events(events: Any) -> list[dict[str, Any]]:
    return [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": pb_attrs(e.attributes)}
        for e in events
    ]


def _pb_links(links: Any) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
            "attributes": pb_attrs(link.attributes),
        }
        for link in links
    ]


def _decode_protobuf(request: ExportTraceServiceRequest) -> Decoded:
    out = Decoded()
    append = out.spans.append
    for rs in request.resource_spans:
        resource_attrs = pb_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            res = Resource(resource_attrs, ss.scope.name, ss.scope.version)
            for s in ss.spans:
                tid, sid, pid = s.trace_id, s.span_id, s.parent_span_id
                start, end = s.start_time_unix_nano, s.end_time_unix_nano
                problem = span_problem(tid, sid, pid, start, end)
                if problem:
                    out.reject(problem)
                    continue
                status = s.status
                append(
                    RawSpan(
                        tid.hex(),
                        sid.hex(),
                        pid.hex(),
                        s.name,
                        s.kind,
                        start,
                        end,
                        pb_attrs(s.attributes),
                        _pb_events(s.events) if s.events else [],
                        _pb_links(s.links) if s.links else [],
                        status.code,
                        status.message,
                        res,
                    )
                )
    out.accepted = len(out.spans)
    return out


# --- OTLP/JSON ----------------------------------------------------------------------------


def _json_enum(v: Any, names: dict[str, int], what: str) -> int:
    if isinstance(v, str) and v in names:
        return names[v]
    return json_int(v, what) if v is not None else 0


def _json_events(events: Any, out: Decoded) -> list[dict[str, Any]]:
    return [
        {
            "time_ns": json_int(json_field(e, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano"),
            "name": str(e.get("name", "")),
            "attributes": json_attrs(e.get("attributes") or [], out),
        }
        for e in events or ()
        if isinstance(e, dict)
    ]


def _json_links(links: Any, out: Decoded) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": json_id(json_field(link, "traceId", "trace_id", "")).hex(),
            "span_id": json_id(json_field(link, "spanId", "span_id", "")).hex(),
            "attributes": json_attrs(link.get("attributes") or [], out),
        }
        for link in links or ()
        if isinstance(link, dict)
    ]


def _json_span(s: dict[str, Any], res: Resource, out: Decoded) -> None:
    try:
        span = _json_span_or_problem(s, res, out)
    except DecodeError as exc:
        span = str(exc)
    if isinstance(span, str):
        out.reject(span)
    else:
        out.spans.append(span)


def _json_span_or_problem(s: dict[str, Any], res: Resource, out: Decoded) -> RawSpan | str:
    tid = json_id(json_field(s, "traceId", "trace_id", ""))
    sid = json_id(json_field(s, "spanId", "span_id", ""))
    pid = json_id(json_field(s, "parentSpanId", "parent_span_id", ""))
    start = json_int(
        json_field(s, "startTimeUnixNano", "start_time_unix_nano", 0), "startTimeUnixNano"
    )
    end = json_int(json_field(s, "endTimeUnixNano", "end_time_unix_nano", 0), "endTimeUnixNano")
    problem = span_problem(tid, sid, pid, start, end)
    if problem:
        return problem
    status = s.get("status") or {}
    return RawSpan(
        tid.hex(),
        sid.hex(),
        pid.hex(),
        str(s.get("name", "")),
        _json_enum(s.get("kind"), _KIND_NAMES, "kind"),
        start,
        end,
        json_attrs(s.get("attributes") or [], out),
        _json_events(s.get("events"), out),
        _json_links(s.get("links"), out),
        _json_enum(status.get("code"), _STATUS_NAMES, "status.code"),
        str(status.get("message") or ""),
        res,
    )


def _decode_json(doc: dict[str, Any]) -> Decoded:
    out = Decoded()
    try:
        for rs in json_list(doc, "resourceSpans", "resource_spans"):
            resource_attrs = json_attrs((rs.get("resource") or {}).get("attributes") or [], out)
            scope_groups = json_list(rs, "scopeSpans", "scope_spans") or json_list(
                rs, "instrumentationLibrarySpans", "instrumentation_library_spans"
            )
            for ss in scope_groups:
                scope = ss.get("scope") or ss.get("instrumentationLibrary") or {}
                res = Resource(
                    resource_attrs, str(scope.get("name", "")), str(scope.get("version", ""))
                )
                for s in json_list(ss, "spans", "spans"):
                    _json_span(s, res, out)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"OTLP/JSON body is malformed: {exc}") from None
    out.accepted = len(out.spans)
    return out
