"""Decoding OTLP trace requests (protobuf and OTLP/JSON) into plain Python spans.

Pure functions: bytes in, `RawSpan`s out. Request-level problems raise `DecodeError`;
per-span problems (bad id, end before start, a time past int64) reject that span only and
are counted for the OTLP `partial_success` answer; a bad attribute value (an OTLP/JSON
`intValue` outside int64) costs that attribute only and is reported as a warning
(`partial_success` with `rejected_spans` 0, as the OTLP spec provides).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from watchkeeper.errors import DecodeError, PayloadTooLarge, UnsupportedContentType
from watchkeeper.model import MAX_TIME_NS

Encoding = Literal["protobuf", "json"]

_PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
_JSON_TYPES = frozenset({"application/json"})
_SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_KIND_NAMES = {f"SPAN_KIND_{k.upper()}": i for i, k in enumerate(_SPAN_KINDS)}
_MAX_ERRORS = 5  # distinct per-span messages kept for partial_success.error_message
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


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
class Losses:
    """What a request lost: items rejected whole, attribute values left out, a few reasons
    of each (OTLP `partial_success`). `NOUN` names the items ("spans", "log records")."""

    NOUN: ClassVar[str] = "spans"
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    dropped_values: int = 0  # attribute values left out (their items are kept)
    warnings: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        """Count one rejected item, keeping a few distinct messages."""
        self.rejected += 1
        _keep(self.errors, message)

    def drop_value(self, message: str) -> None:
        """Count one attribute value left out of its item, keeping a few distinct messages."""
        self.dropped_values += 1
        _keep(self.warnings, message)

    @property
    def error_message(self) -> str:
        """The `partial_success.error_message` ("" when nothing was rejected or dropped)."""
        parts = []
        if self.rejected:
            parts.append(f"{self.rejected} {self.NOUN} rejected: " + "; ".join(self.errors))
        if self.dropped_values:
            what = f"{self.dropped_values} attribute values dropped (their {self.NOUN} are kept): "
            parts.append(what + "; ".join(self.warnings))
        return "; ".join(parts)


@dataclass(slots=True)
class Decoded(Losses):
    """A decoded request: its valid spans and what was rejected and why."""

    spans: list[RawSpan] = field(default_factory=list)
    accepted: int = 0  # valid spans (also set by the cheap check, which keeps no spans)


def _keep(messages: list[str], message: str) -> None:
    if len(messages) < _MAX_ERRORS and message not in messages:
        messages.append(message)


def encoding_of(content_type: str | None) -> Encoding:
    """Which OTLP encoding a Content-Type names; `UnsupportedContentType` for any other."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _PROTOBUF_TYPES:
        return "protobuf"
    if media in _JSON_TYPES:
        return "json"
    raise UnsupportedContentType(
        f"content type {content_type!r} is not supported: send application/x-protobuf "
        "or application/json"
    )


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding` (identity or gzip), never inflating more than `limit` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(body) > limit:
            raise PayloadTooLarge(f"body of {len(body)} bytes is over the {limit} byte limit")
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedContentType(
            f"content encoding {content_encoding!r} is not supported: use gzip or none"
        )
    wbits = 31 if "gzip" in encoding else 15
    out = bytearray()
    rest = body
    try:
        while True:  # gzip may hold several members (RFC 1952 2.2): read them all
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise PayloadTooLarge(f"body inflates to more than the {limit} byte limit")
            out += inflater.flush()
            if not inflater.eof:
                raise DecodeError(f"{encoding} body is truncated")
            rest = inflater.unused_data
            if wbits != 31 or not rest.strip(b"\0"):  # trailing zero padding is allowed
                break
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"body inflates to more than the {limit} byte limit")
    return bytes(out)


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
    for rs in _list(doc, "resourceSpans", "resource_spans"):
        scopes = _list(rs, "scopeSpans", "scope_spans") or _list(
            rs, "instrumentationLibrarySpans", "instrumentation_library_spans"
        )
        for ss in scopes:
            spans, i = _list(ss, "spans", "spans"), 0
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


def _pb_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    # The hot loop of ingest: strings (most values) skip the generic converter's call.
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = v.string_value if kind == "string_value" else _pb_value(v)
    return out


def _pb_events(events: Any) -> list[dict[str, Any]]:
    return [
        {"time_ns": e.time_unix_nano, "name": e.name, "attributes": _pb_attrs(e.attributes)}
        for e in events
    ]


def _pb_links(links: Any) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
            "attributes": _pb_attrs(link.attributes),
        }
        for link in links
    ]


def _decode_protobuf(request: ExportTraceServiceRequest) -> Decoded:
    out = Decoded()
    append = out.spans.append
    for rs in request.resource_spans:
        resource_attrs = _pb_attrs(rs.resource.attributes)
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
                        _pb_attrs(s.attributes),
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


def _get(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    """A field by its lowerCamel JSON name or its proto name (both are valid JSON mapping)."""
    v = d.get(camel)
    if v is None:
        v = d.get(snake, default)
    return default if v is None else v


def _json_int(v: Any, what: str, lo: int = 0, hi: int = _UINT64_MAX) -> int:
    """An integer field (a number or a decimal string) within [lo, hi] (uint64 by default)."""
    n: int | None = None
    if isinstance(v, bool):
        pass
    elif isinstance(v, int):
        n = v
    elif isinstance(v, str) and len(v) <= 24:  # no int64 needs more; bounds int() work
        with contextlib.suppress(ValueError):
            n = int(v)
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    if n is None:
        raise DecodeError(f"{what} must be an integer (number or decimal string), got {v!r:.40}")
    if not lo <= n <= hi:
        raise DecodeError(f"{what} {n} is out of range [{lo}, {hi}]")
    return n


def _json_float(v: Any) -> float:
    if isinstance(v, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        return special[v] if v in special else float(v)
    return float(v)


def _json_value(v: Any, out: Losses) -> Any:
    """An AnyValue; `DecodeError` (or ValueError) when it is not a valid one."""
    if not isinstance(v, dict):
        return None
    for key, val in v.items():
        if key in ("stringValue", "string_value"):
            return str(val)
        if key in ("boolValue", "bool_value"):
            return bool(val)
        if key in ("intValue", "int_value"):
            return _json_int(val, "intValue", *_INT64)
        if key in ("doubleValue", "double_value"):
            return _json_float(val)
        if key in ("arrayValue", "array_value"):
            return [_json_value(x, out) for x in (val or {}).get("values") or ()]
        if key in ("kvlistValue", "kvlist_value"):
            return _json_attrs((val or {}).get("values") or (), out)
        if key in ("bytesValue", "bytes_value"):
            return str(val)
    return None  # an empty AnyValue, or only unknown fields


def _json_attrs(kvs: Any, out: Losses) -> dict[str, Any]:
    """Attributes by key; a value that is not a valid AnyValue costs its attribute only."""
    if not isinstance(kvs, (list, tuple)):
        raise DecodeError("attributes must be a list of {key, value}")
    attrs: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            try:
                attrs[kv["key"]] = _json_value(kv.get("value"), out)
            except (DecodeError, ValueError, TypeError, AttributeError) as exc:
                out.drop_value(f"attribute {kv['key']!r:.80}: {exc}")
    return attrs


def _json_id(v: Any) -> bytes:
    """An id: hex per OTLP/JSON; base64 (plain protobuf JSON) is accepted as a fallback."""
    if not v:
        return b""
    if not isinstance(v, str):
        return b"?"
    try:
        return bytes.fromhex(v)
    except ValueError:
        pass
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return b"?"  # wrong length on purpose: reported as a bad id


def _json_enum(v: Any, names: dict[str, int], what: str) -> int:
    if isinstance(v, str) and v in names:
        return names[v]
    return _json_int(v, what) if v is not None else 0


def _json_events(events: Any, out: Decoded) -> list[dict[str, Any]]:
    return [
        {
            "time_ns": _json_int(_get(e, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano"),
            "name": str(e.get("name", "")),
            "attributes": _json_attrs(e.get("attributes") or [], out),
        }
        for e in events or ()
        if isinstance(e, dict)
    ]


def _json_links(links: Any, out: Decoded) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": _json_id(_get(link, "traceId", "trace_id", "")).hex(),
            "span_id": _json_id(_get(link, "spanId", "span_id", "")).hex(),
            "attributes": _json_attrs(link.get("attributes") or [], out),
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
    tid = _json_id(_get(s, "traceId", "trace_id", ""))
    sid = _json_id(_get(s, "spanId", "span_id", ""))
    pid = _json_id(_get(s, "parentSpanId", "parent_span_id", ""))
    start = _json_int(_get(s, "startTimeUnixNano", "start_time_unix_nano", 0), "startTimeUnixNano")
    end = _json_int(_get(s, "endTimeUnixNano", "end_time_unix_nano", 0), "endTimeUnixNano")
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
        _json_attrs(s.get("attributes") or [], out),
        _json_events(s.get("events"), out),
        _json_links(s.get("links"), out),
        _json_enum(status.get("code"), _STATUS_NAMES, "status.code"),
        str(status.get("message") or ""),
        res,
    )


def _list(d: dict[str, Any], camel: str, snake: str) -> list[Any]:
    v = _get(d, camel, snake, [])
    if not isinstance(v, list):
        raise DecodeError(f"'{camel}' must be a list")
    return [x for x in v if isinstance(x, dict)]


def _decode_json(doc: dict[str, Any]) -> Decoded:
    out = Decoded()
    try:
        for rs in _list(doc, "resourceSpans", "resource_spans"):
            resource_attrs = _json_attrs((rs.get("resource") or {}).get("attributes") or [], out)
            scope_groups = _list(rs, "scopeSpans", "scope_spans") or _list(
                rs, "instrumentationLibrarySpans", "instrumentation_library_spans"
            )
            for ss in scope_groups:
                scope = ss.get("scope") or ss.get("instrumentationLibrary") or {}
                res = Resource(
                    resource_attrs, str(scope.get("name", "")), str(scope.get("version", ""))
                )
                for s in _list(ss, "spans", "spans"):
                    _json_span(s, res, out)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"OTLP/JSON body is malformed: {exc}") from None
    out.accepted = len(out.spans)
    return out
