"""What the OTLP decoders of every signal share: the request's encoding and compression,
what a request lost (`Losses`, for `partial_success`), and AnyValue attributes read from
protobuf messages and from OTLP/JSON."""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from watchkeeper.errors import DecodeError, PayloadTooLarge, UnsupportedContentType

Encoding = Literal["protobuf", "json"]

_PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
_JSON_TYPES = frozenset({"application/json"})
_MAX_ERRORS = 5  # distinct per-item messages kept for partial_success.error_message
_INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64_MAX = (1 << 64) - 1


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


def _keep(messages: list[str], message: str) -> None:
    if len(messages) < _MAX_ERRORS and message not in messages:
        messages.append(message)


# --- protobuf -----------------------------------------------------------------------------


def pb_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind is None:
        return None
    if kind == "array_value":
        return [pb_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: pb_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def pb_attrs(kvs: Any) -> dict[str, Any]:
    # The hot loop of ingest: strings (most values) skip the generic converter's call.
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = v.string_value if kind == "string_value" else pb_value(v)
    return out


# --- OTLP/JSON ----------------------------------------------------------------------------


def json_field(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    """A field by its lowerCamel JSON name or its proto name (both are valid JSON mapping)."""
    v = d.get(camel)
    if v is None:
        v = d.get(snake, default)
    return default if v is None else v


def json_int(v: Any, what: str, lo: int = 0, hi: int = UINT64_MAX) -> int:
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


def json_float(v: Any) -> float:
    if isinstance(v, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        return special[v] if v in special else float(v)
    return float(v)


def json_value(v: Any, out: Losses) -> Any:
    """An AnyValue; `DecodeError` (or ValueError) when it is not a valid one."""
    if not isinstance(v, dict):
        return None
    for key, val in v.items():
        if key in ("stringValue", "string_value"):
            return str(val)
        if key in ("boolValue", "bool_value"):
            return bool(val)
        if key in ("intValue", "int_value"):
            return json_int(val, "intValue", *_INT64)
        if key in ("doubleValue", "double_value"):
            return json_float(val)
        if key in ("arrayValue", "array_value"):
            return [json_value(x, out) for x in (val or {}).get("values") or ()]
        if key in ("kvlistValue", "kvlist_value"):
            return json_attrs((val or {}).get("values") or (), out)
        if key in ("bytesValue", "bytes_value"):
            return str(val)
    return None  # an empty AnyValue, or only unknown fields


def json_attrs(kvs: Any, out: Losses) -> dict[str, Any]:
    """Attributes by key; a value that is not a valid AnyValue costs its attribute only."""
    if not isinstance(kvs, (list, tuple)):
        raise DecodeError("attributes must be a list of {key, value}")
    attrs: dict[str, Any] = {}
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            try:
                attrs[kv["key"]] = json_value(kv.get("value"), out)
            except (DecodeError, ValueError, TypeError, AttributeError) as exc:
                out.drop_value(f"attribute {kv['key']!r:.80}: {exc}")
    return attrs


def json_id(v: Any) -> bytes:
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


def json_list(d: dict[str, Any], camel: str, snake: str) -> list[Any]:
    v = json_field(d, camel, snake, [])
    if not isinstance(v, list):
        raise DecodeError(f"'{camel}' must be a list")
    return [x for x in v if isinstance(x, dict)]
