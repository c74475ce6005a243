"""Prometheus remote-write 1.0: a snappy-compressed `prometheus.WriteRequest` into samples.

The messages are declared here from the remote-write specification (prompb/types.proto and
remote.proto, the fields 1.0 defines) and built by the protobuf runtime, so no generated
code is vendored. Pure functions; a body that cannot be read raises `DecodeError`.

The hot path reads the wire format by hand (a few operations per sample), since a message
object per series and sample is where the time went: each series' `labels` bytes are looked
up in a `LabelCache` (parsed and checked by the protobuf runtime only the first time), and
the samples come out as columns (`SampleColumns`).

Prometheus's staleness marker (the NaN with bits 0x7ff0000000000002) becomes a stale sample;
any other NaN is a value, as Prometheus keeps it. Native histograms (field 4) are not stored
yet: their series are counted as rejected.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from watchkeeper.errors import DecodeError, PayloadTooLarge
from watchkeeper.ingest._metrics_decode import DecodedMetrics, SampleLists
from watchkeeper.model import Labels, Metadata

STALE_NAN_BITS = 0x7FF0000000000002
_TYPES = {0: "unknown", 1: "counter", 2: "gauge", 3: "histogram", 4: "gaugehistogram",
          5: "summary", 6: "info", 7: "stateset"}  # fmt: skip


def _messages() -> Any:
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="watchkeeper_prompb.proto", package="wkprompb")

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = file.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("Label", ("name", 1, F.TYPE_STRING, opt, ""), ("value", 2, F.TYPE_STRING, opt, ""))
    message("Sample", ("value", 1, F.TYPE_DOUBLE, opt, ""), ("timestamp", 2, F.TYPE_INT64, opt, ""))
    message("Histogram")  # only counted: its fields are not read
    message(
        "TimeSeries",
        ("labels", 1, F.TYPE_MESSAGE, rep, ".wkprompb.Label"),
        ("samples", 2, F.TYPE_MESSAGE, rep, ".wkprompb.Sample"),
        ("histograms", 4, F.TYPE_MESSAGE, rep, ".wkprompb.Histogram"),
    )
    message(
        "MetricMetadata",
        ("type", 1, F.TYPE_INT32, opt, ""),
        ("metric_family_name", 2, F.TYPE_STRING, opt, ""),
        ("help", 4, F.TYPE_STRING, opt, ""),
        ("unit", 5, F.TYPE_STRING, opt, ""),
    )
    message(
        "WriteRequest",
        ("timeseries", 1, F.TYPE_MESSAGE, rep, ".wkprompb.TimeSeries"),
        ("metadata", 3, F.TYPE_MESSAGE, rep, ".wkprompb.MetricMetadata"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("wkprompb.WriteRequest"))


WriteRequest = _messages()
_FIELDS = WriteRequest.DESCRIPTOR.fields_by_name
TimeSeries: Any = message_factory.GetMessageClass(_FIELDS["timeseries"].message_type)
MetricMetadata: Any = message_factory.GetMessageClass(_FIELDS["metadata"].message_type)
_DOUBLE = struct.Struct("<d")
_STALE = struct.pack("<Q", STALE_NAN_BITS)


def _varint(data: bytes) -> int:
    """The leading varint of a snappy block: its uncompressed length."""
    n, shift = 0, 0
    for i, byte in enumerate(data[:10]):
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n
        shift += 7
        if i == 9:
            break
    raise DecodeError("body is not snappy-compressed (no length header)")


def unsnappy(body: bytes, limit: int) -> bytes:
    """Undo remote-write's snappy block compression, never past `limit` bytes."""
    size = _varint(body)
    if size > limit:
        raise PayloadTooLarge(f"body inflates to {size} bytes, over the {limit} byte limit")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam.DecompressionError
        raise DecodeError(f"body is not valid snappy: {exc}") from None


class LabelCache:
    """Label sets by the bytes of their `labels` fields, of the series seen lately: a series
    sent again (every scrape, every request) is neither parsed nor checked again. Bounded:
    emptied when full. Shared by the request path and the writer (a dict's get and set are
    atomic)."""

    def __init__(self, size: int = 500_000) -> None:
        self._size = size
        self._known: dict[bytes, Labels | str] = {}

    def get(self, raw: bytes) -> Labels | str:
        """The sorted labels of these `labels` field bytes, or what is wrong with them."""
        found = self._known.get(raw)
        if found is None:
            if len(self._known) >= self._size:
                self._known.clear()
            found = self._known[raw] = _labels_of(raw)
        return found


def _labels_of(raw: bytes) -> Labels | str:
    """Parse a series' `labels` fields; a problem as a string. Read by hand when each label
    is its name then its value (how senders write them), else by the protobuf runtime."""
    pairs = _label_pairs(raw)
    if pairs is None:
        ts = TimeSeries()
        try:
            ts.ParseFromString(raw)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(
                f"body is not a Prometheus remote-write WriteRequest: {exc}"
            ) from None
        pairs = [(label.name, label.value) for label in ts.labels]
    texts = [(k, v) for k, v in pairs if isinstance(k, str) and isinstance(v, str)]
    if len(texts) != len(pairs):
        # The runtime hands invalid UTF-8 back as bytes (these strings are proto2's).
        return "a label name or value is not valid UTF-8"
    names = [k for k, _ in texts]
    if all(a < b for a, b in itertools.pairwise(names)):  # sorted, none twice: as required
        found = tuple((k, v) for k, v in texts if v)
        if not any(k == "__name__" for k, _ in found):
            return "a series without a metric name (__name__)"
        return found
    labels = {k: v for k, v in texts if v}
    if len(names) != len(set(names)):
        return f"duplicate label names in {sorted(names)}"
    if not labels.get("__name__"):
        return "a series without a metric name (__name__)"
    return tuple(sorted(labels.items()))


def _label_pairs(raw: bytes) -> list[tuple[str | bytes, str | bytes]] | None:
    """(name, value) of each `Label` written as `0A len name 12 len value` with one-byte
    lengths (invalid UTF-8 left as bytes); None for any other form."""
    pairs: list[tuple[str | bytes, str | bytes]] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end or raw[pos] != 0x0A or raw[pos + 2] != 0x0A:
            return None
        size, n = raw[pos + 1], raw[pos + 3]
        v = pos + 4 + n
        if size >= 0x80 or n >= 0x80 or v + 2 > end or raw[v] != 0x12:
            return None
        m = raw[v + 1]
        stop = v + 2 + m
        if m >= 0x80 or stop != pos + 2 + size or stop > end:
            return None
        pairs.append((_text(raw[pos + 4 : v]), _text(raw[v + 2 : stop])))
        pos = stop
    return pairs


def _text(b: bytes) -> str | bytes:
    try:
        return b.decode()
    except UnicodeDecodeError:
        return b


def decode_remote_write(body: bytes, cache: LabelCache | None = None) -> DecodedMetrics:
    """The samples of an uncompressed `WriteRequest`, as columns (`SampleColumns`)."""
    try:
        return _decode(body, cache or LabelCache())
    except IndexError:
        raise DecodeError(
            "body is not a Prometheus remote-write WriteRequest: truncated message"
        ) from None


def _decode(body: bytes, cache: LabelCache) -> DecodedMetrics:
    out = DecodedMetrics()
    cols = _Columns()
    pos, end = 0, len(body)
    while pos < end:
        tag, pos = _varint_at(body, pos)
        if tag == 0x0A:  # timeseries
            size = body[pos]  # one byte for a series of up to 127 bytes
            if size < 0x80:
                pos += 1
            else:
                size, pos = _varint_at(body, pos)
            _series(body, pos, _within(pos + size, end), cache, cols, out)
            pos += size
        elif tag == 0x1A:  # metadata
            size, pos = _varint_at(body, pos)
            _metadata(body[pos : _within(pos + size, end)], out)
            pos += size
        else:
            pos = _skip(body, pos, tag, end)
    out.columns = cols.done()
    return out


def _series(
    body: bytes,
    pos: int,
    end: int,
    cache: LabelCache,
    cols: _Columns,
    out: DecodedMetrics,
) -> None:
    """One `TimeSeries`: its label bytes looked up, its samples appended to the columns."""
    first, start = len(cols.t_ms), pos
    while pos < end and body[pos] == 0x0A:  # the labels, first as Prometheus writes them
        size = body[pos + 1]
        if size >= 0x80:
            size, at = _varint_at(body, pos + 1)
            pos = _within(at + size, end)
        else:
            pos = _within(pos + 2 + size, end)
    label_bytes, later, histograms = body[start:pos], b"", False
    stamps = cols.stamps
    while pos < end:
        if body[pos] == 0x12 and body[pos + 1] < 0x80:  # a sample, the usual form first
            inner, pos = pos + 2, _within(pos + 2 + body[pos + 1], end)
            if pos - inner > 10 and body[inner] == 0x09 and body[inner + 9] == 0x10:
                t_ms = stamps.get(body[inner + 10 : pos])  # the request's few timestamps
                if t_ms is not None:
                    raw = body[inner + 1 : inner + 9]
                    cols.t_ms.append(t_ms)
                    cols.values.append(_DOUBLE.unpack(raw)[0])
                    cols.stale.append(raw == _STALE)
                    continue
            _sample(body, inner, pos, cols)
            continue
        tag, at = _varint_at(body, pos)
        if tag == 0x12:
            size, inner = _varint_at(body, at)
            pos = _within(inner + size, end)
            _sample(body, inner, pos, cols)
        elif tag == 0x0A:  # a label after a sample: legal, if not what senders do
            size, inner = _varint_at(body, at)
            later += body[pos : _within(inner + size, end)]
            pos = inner + size
        else:
            histograms = histograms or tag == 0x22
            pos = _skip(body, at, tag, end)
    labels = cache.get(label_bytes + later if later else label_bytes)
    if histograms:
        labels = "native histograms are not stored yet"
    if isinstance(labels, str):  # the series is rejected, the rest of the request kept
        cols.truncate(first)
        out.reject(labels)
        return
    n = len(cols.t_ms) - first
    cols.index.extend([cols.slots.setdefault(labels, len(cols.slots))] * n)
    out.points += n


def _sample(body: bytes, pos: int, end: int, cols: _Columns) -> None:
    """One `Sample`: value (fixed64 double, field 1) and timestamp (varint, field 2); a
    timestamp in the usual form is remembered (`_series` reads the next ones inline)."""
    value, t_ms, stale, start = 0.0, 0, False, pos
    while pos < end:
        tag, pos = _varint_at(body, pos)
        if tag == 0x09:
            raw = body[pos : _within(pos + 8, end)]
            value, stale = _DOUBLE.unpack(raw)[0], raw == _STALE
            pos += 8
        elif tag == 0x10:
            stamp = pos
            t_ms, pos = _varint_at(body, pos)
            if t_ms >= 1 << 63:  # a negative int64
                t_ms -= 1 << 64
            if stamp == start + 10 and pos == end:
                cols.stamps[body[stamp:end]] = t_ms
        else:
            pos = _skip(body, pos, tag, end)
    cols.t_ms.append(t_ms)
    cols.values.append(value)
    cols.stale.append(stale)


def _metadata(raw: bytes, out: DecodedMetrics) -> None:
    m = MetricMetadata()
    try:
        m.ParseFromString(raw)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a Prometheus remote-write WriteRequest: {exc}") from None
    out.metadata[m.metric_family_name] = Metadata(_TYPES.get(m.type, "unknown"), m.unit, m.help)


class _Columns(SampleLists):
    """The sample columns of a request while it is read (none a delta): a series' samples
    are appended before its labels are known, its slot after them."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: dict[bytes, int] = {}  # a timestamp's varint bytes -> its value

    def truncate(self, n: int) -> None:
        """Forget the samples from the `n`th on (a series rejected)."""
        del self.t_ms[n:], self.values[n:], self.stale[n:]


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it (`IndexError` when cut short)."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    n, shift = byte & 0x7F, 7
    for i in range(pos + 1, pos + 10):
        byte = data[i]
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, i + 1
        shift += 7
    raise DecodeError("body is not a Prometheus remote-write WriteRequest: a varint too long")


def _within(stop: int, end: int) -> int:
    if stop > end:
        raise DecodeError("body is not a Prometheus remote-write WriteRequest: truncated field")
    return stop


def _skip(data: bytes, pos: int, tag: int, end: int) -> int:
    """The position after a field this decoder does not read (by its wire type)."""
    wire = tag & 7
    if tag >> 3 == 0:
        raise DecodeError("body is not a Prometheus remote-write WriteRequest: field number 0")
    if wire == 0:
        return _varint_at(data, pos)[1]
    if wire == 1:
        return _within(pos + 8, end)
    if wire == 2:
        size, pos = _varint_at(data, pos)
        return _within(pos + size, end)
    if wire == 5:
        return _within(pos + 4, end)
    raise DecodeError(f"body is not a Prometheus remote-write WriteRequest: wire type {wire}")
