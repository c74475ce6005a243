"""Decoding OTLP log requests (protobuf and OTLP/JSON) into log records (Arrow columns).

Pure functions: bytes in, rows out. What a record keeps: its time (the observed time when it
has none, as OTLP says; the time of receipt when it has neither), severity number and text
(a record that gives only a text, "WARN" or "error", gets the number of that range, as Loki
and the Collector read them), body (text as it is, any other value as JSON), trace and span
ids, the resource's service, environment and host, its scope, event name and attributes.

One bad value costs that value (an attribute, an id of the wrong length), a record refused
for its content costs that record (counted for `partial_success.rejected_log_records`), and
only a body that is not an OTLP logs request at all is refused (`DecodeError`).

Bad input is kept, marked (issue 12): a body over `MAX_BODY_BYTES` is cut there with a
marker at its end and its size in `watchkeeper.body.original_bytes`; invalid UTF-8 is
replaced by U+FFFD (`_utf8`); a time far from the observed one (before `PAST_NS` of it, after
`FUTURE_NS`: year 1970, 2300) is stored as the observed time, the one sent kept in
`watchkeeper.time.original_unix_nano` and the reason in `watchkeeper.time.adjusted`.
"""

from __future__ import annotations

import contextlib
import hashlib
from array import array
from dataclasses import dataclass, field, fields
from itertools import accumulate
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._bad_logs import repaired_utf8
from watchkeeper.ingest._otlp_values import (
    Encoding,
    Losses,
    json_attrs,
    json_field,
    json_id,
    json_int,
    json_list,
    json_value,
    pb_attrs,
    pb_value,
)
from watchkeeper.model import MAX_TIME_NS, LogRow
from watchkeeper.model import conventions as c

if TYPE_CHECKING:
    import pyarrow as pa

#: Severity texts by the first letters that name them (case-insensitive), as the usual
#: loggers spell them: Python's WARNING/CRITICAL, Go's and Java's, syslog's.
_SEVERITY_WORDS = {
    "trace": 1, "debug": 5, "info": 9, "notice": 10, "warn": 13, "error": 17, "err": 17,
    "crit": 21, "fatal": 21, "alert": 22, "emerg": 23, "panic": 21, "severe": 17,
}  # fmt: skip
_SEVERITY_NAMES = {"SEVERITY_NUMBER_UNSPECIFIED": 0} | {  # OTLP/JSON may name the enum
    f"SEVERITY_NUMBER_{name}{k + 1 if k else ''}": 4 * i + k + 1
    for i, name in enumerate(("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"))
    for k in range(4)
}


#: A body longer than this (UTF-8 bytes) is cut to it, with `CUT_MARKER` after it.
MAX_BODY_BYTES = 1 << 20
CUT_MARKER = " [... cut by watchkeeper: {size} bytes sent, the first {kept} kept]"
#: How far a record's time may be from its observed time before the observed one is stored
#: instead: a day ahead (clocks drift; a record is not written tomorrow), a year behind (an
#: old file shipped late is kept as it says; a time of 0 or 1970 is not).
FUTURE_NS = 86_400 * 10**9
PAST_NS = 366 * 86_400 * 10**9


#: The columns of a log record, in `LogRow`'s order; the integers among them.
COLUMNS = tuple(f.name for f in fields(LogRow))
INTS = frozenset({"time_ns", "observed_ns", "severity_number"})
#: A column as Arrow lays it out, in bytes: (int64 values, b"") or (int32 offsets, UTF-8).
Packed = dict[str, tuple[bytes, bytes]]


def pack(rows: list[tuple[Any, ...]]) -> Packed:
    """Records' values (tuples in `COLUMNS` order) as Arrow's buffers, built without Arrow:
    a decoder process then imports no pyarrow (~90 MiB of RSS in each process that uses
    it), and the buffers cross to the server as a few byte strings."""
    out: Packed = {}
    by_column = zip(*rows, strict=True) if rows else ((),) * len(COLUMNS)
    for name, values in zip(COLUMNS, by_column, strict=True):
        if name in INTS:
            out[name] = (array("q", values).tobytes(), b"")
        else:  # a lone surrogate (from OTLP/JSON) is replaced, as invalid UTF-8 is
            data = [v.encode("utf-8", "replace") for v in values]
            out[name] = (
                array("i", accumulate(map(len, data), initial=0)).tobytes(),
                b"".join(data),
            )
    return out


@dataclass(slots=True)
class DecodedLogs(Losses):
    """A decoded request: its records as columns (`packed`, `COLUMNS`; `table` gives the
    Arrow table over the same bytes) and what was rejected or dropped, and why.

    Columns, not a `LogRow` each: the writer inserts Arrow, and the columns cross from a
    decoder process (`_offload`) as a few buffers instead of an object per value.
    `receipt_timed`: records whose time is the request's time of receipt (`now_ns`), not
    one of their own; a decode at another `now_ns` gives them other times (and ids).
    """

    NOUN: ClassVar[str] = "log records"
    count: int = 0
    packed: Packed = field(default_factory=lambda: pack([]))
    receipt_timed: int = 0

    @property
    def table(self) -> pa.Table:
        """The records as the Arrow table the log stores write (no copy of the bytes)."""
        from watchkeeper.store.logs import packed_table  # Arrow: in the server, not here

        return packed_table(self.count, self.packed, INTS)

    @property
    def records(self) -> list[LogRow]:
        """The records as rows (for tests and small callers)."""
        from watchkeeper.store.logs import rows_of

        return rows_of(self.table)


def severity_of(number: int, text: str) -> int:
    """The record's severity number: its own, else the number its text names (0 if none)."""
    if 1 <= number <= 24:
        return number
    word = text.strip().lower()
    for length in (6, 5, 4, 3):
        found = _SEVERITY_WORDS.get(word[:length])
        if found is not None:
            return found
    return 0


def log_id(*parts: object) -> str:
    """A digest of what a record says (its identity for de-duplication)."""
    return hashlib.blake2b(orjson.dumps(parts), digest_size=8).hexdigest()


@dataclass(slots=True)
class _Group:
    """What the records of one resource and scope share."""

    project: str
    service: str
    environment: str
    host: str
    scope: str
    resource: str


def _group(resource: dict[str, Any], scope: str, project: str, from_resource: bool) -> _Group:
    def first(names: tuple[str, ...]) -> str:
        for name in names:
            v = resource.get(name)
            if isinstance(v, str) and v:
                return v
        return ""

    if from_resource:
        project = first(c.READ["project"]) or project
    return _Group(
        project,
        first(c.READ["service"]) or "unknown_service",
        first(c.READ["environment"]),
        first(("host.name",)),
        scope,
        orjson.dumps(resource).decode(),
    )


def _body(value: Any, attributes: dict[str, Any]) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) <= MAX_BODY_BYTES // 4:  # 4 bytes per character at most: short enough
        return text
    data = text.encode()
    if len(data) <= MAX_BODY_BYTES:
        return text
    kept = data[:MAX_BODY_BYTES].decode(errors="ignore")  # never half a character
    attributes["watchkeeper.body.original_bytes"] = len(data)
    return kept + CUT_MARKER.format(size=len(data), kept=len(kept.encode()))


def _times(
    out: DecodedLogs, time_ns: int, observed_ns: int, now_ns: int, attributes: dict[str, Any]
) -> tuple[int, int]:
    """(time, observed time) to store: the record's own when it can be believed."""
    if not observed_ns or observed_ns > MAX_TIME_NS:
        out.receipt_timed += 1
        observed_ns = now_ns
    if not time_ns:
        return observed_ns, observed_ns
    if observed_ns - PAST_NS <= time_ns <= observed_ns + FUTURE_NS:
        return time_ns, observed_ns
    attributes["watchkeeper.time.adjusted"] = "future" if time_ns > observed_ns else "past"
    attributes["watchkeeper.time.original_unix_nano"] = str(time_ns)
    return observed_ns, observed_ns


def _record(
    g: _Group,
    out: DecodedLogs,
    rows: list[tuple[Any, ...]],
    times: tuple[int, int, int],
    severity: tuple[int, str],
    body: Any,
    ids: tuple[bytes, bytes],
    event_name: str,
    attributes: dict[str, Any],
) -> None:
    time_ns, observed_ns = _times(out, *times, attributes)
    trace_id, span_id = ids
    if trace_id and (len(trace_id) != 16 or not any(trace_id)):
        out.drop_value(f"trace id of {len(trace_id)} bytes (16 non-zero expected)")
        trace_id = b""
    if span_id and (len(span_id) != 8 or not any(span_id) or not trace_id):
        out.drop_value(f"span id of {len(span_id)} bytes (8 non-zero, with a trace id, expected)")
        span_id = b""
    number, text = severity
    text_body = _body(body, attributes)
    attrs = orjson.dumps(attributes, option=orjson.OPT_NON_STR_KEYS).decode()
    tid, sid = trace_id.hex(), span_id.hex()
    rows.append((
        g.project,
        log_id(time_ns, number, text, text_body, tid, sid, g.service, g.resource, attrs),
        time_ns,
        observed_ns,
        severity_of(number, text),
        text,
        text_body,
        tid,
        sid,
        g.service,
        g.environment,
        g.host,
        g.scope,
        event_name,
        attrs,
        g.resource,
    ))  # fmt: skip


def decode_logs(
    body: bytes, encoding: Encoding, project: str, now_ns: int, *, from_resource: bool = False
) -> DecodedLogs:
    """The records of an OTLP logs request; `DecodeError` when it is not one.

    `project` is the key's; with `from_resource` (auth off) a resource's
    `watchkeeper.project` attribute names the project of its records instead.
    """
    if encoding == "protobuf":
        return _decode_protobuf(_parse(body), project, now_ns, from_resource)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:  # invalid UTF-8 is replaced, not a reason to refuse the request
            doc = orjson.loads(body.decode(errors="replace"))
        except orjson.JSONDecodeError:
            raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("an OTLP/JSON logs request is a JSON object")
    return _decode_json(doc, project, now_ns, from_resource)


def _parse(body: bytes) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
        return request
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        error = exc
    repaired = repaired_utf8(body)  # a string of invalid UTF-8 fails the parse: repair it
    if repaired is not None:
        with contextlib.suppress(ProtobufDecodeError, RuntimeError, ValueError):
            request.ParseFromString(repaired)
            return request
    raise DecodeError(f"body is not an OTLP ExportLogsServiceRequest: {error}") from None


def _decode_protobuf(
    request: ExportLogsServiceRequest, project: str, now_ns: int, from_resource: bool
) -> DecodedLogs:
    out, rows = DecodedLogs(), list[tuple[Any, ...]]()
    for rl in request.resource_logs:
        resource = pb_attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            g = _group(resource, sl.scope.name, project, from_resource)
            for r in sl.log_records:
                _record(
                    g,
                    out,
                    rows,
                    (r.time_unix_nano, r.observed_time_unix_nano, now_ns),
                    (r.severity_number, r.severity_text),
                    pb_value(r.body) if r.HasField("body") else None,
                    (r.trace_id, r.span_id),
                    r.event_name,
                    pb_attrs(r.attributes),
                )
    out.count, out.packed = len(rows), pack(rows)
    return out


def _decode_json(
    doc: dict[str, Any], project: str, now_ns: int, from_resource: bool
) -> DecodedLogs:
    out, rows = DecodedLogs(), list[tuple[Any, ...]]()
    try:
        for rl in json_list(doc, "resourceLogs", "resource_logs"):
            resource = json_attrs((rl.get("resource") or {}).get("attributes") or [], out)
            for sl in json_list(rl, "scopeLogs", "scope_logs"):
                scope = str((sl.get("scope") or {}).get("name", ""))
                g = _group(resource, scope, project, from_resource)
                for r in json_list(sl, "logRecords", "log_records"):
                    try:
                        _json_record(g, r, out, rows, now_ns)
                    except (DecodeError, TypeError, ValueError, AttributeError) as exc:
                        out.reject(f"log record: {exc}")
    except (TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"OTLP/JSON body is malformed: {exc}") from None
    out.count, out.packed = len(rows), pack(rows)
    return out


def _json_record(
    g: _Group, r: dict[str, Any], out: DecodedLogs, rows: list[tuple[Any, ...]], now_ns: int
) -> None:
    time_ns = json_int(json_field(r, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano")
    observed = json_field(r, "observedTimeUnixNano", "observed_time_unix_nano", 0)
    observed_ns = json_int(observed, "observedTimeUnixNano")
    number = json_field(r, "severityNumber", "severity_number", 0)
    number = json_int(_SEVERITY_NAMES.get(number, number), "severityNumber", 0, 24)
    text = str(json_field(r, "severityText", "severity_text", ""))
    body: Any = None
    if r.get("body") is not None:
        try:
            body = json_value(r["body"], out)
        except (DecodeError, ValueError, TypeError, AttributeError) as exc:
            out.drop_value(f"body: {exc}")
    ids = (
        json_id(json_field(r, "traceId", "trace_id", "")),
        json_id(json_field(r, "spanId", "span_id", "")),
    )
    event_name = str(json_field(r, "eventName", "event_name", ""))
    attributes = json_attrs(r.get("attributes") or [], out)
    times = (time_ns, observed_ns, now_ns)
    _record(g, out, rows, times, (number, text), body, ids, event_name, attributes)
