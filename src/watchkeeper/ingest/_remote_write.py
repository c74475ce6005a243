"""Prometheus remote-write 1.0: a snappy-compressed `prometheus.WriteRequest` into samples.

The messages are declared here from the remote-write specification (prompb/types.proto and
remote.proto, the fields 1.0 defines) and built by the protobuf runtime, so no generated
code is vendored. Pure functions; a body that cannot be read raises `DecodeError`.

Prometheus's staleness marker (the NaN with bits 0x7ff0000000000002) becomes a stale sample;
any other NaN is a value, as Prometheus keeps it. Native histograms (field 4) are not stored
yet: their series are counted as rejected.
"""

from __future__ import annotations

import struct
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from watchkeeper.errors import DecodeError, PayloadTooLarge
from watchkeeper.ingest._metrics_decode import DecodedMetrics
from watchkeeper.model import Metadata, Sample

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


def decode_remote_write(body: bytes) -> DecodedMetrics:
    """The samples of an uncompressed `WriteRequest`."""
    request = WriteRequest()
    try:
        request.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a Prometheus remote-write WriteRequest: {exc}") from None
    out = DecodedMetrics()
    for ts in request.timeseries:
        labels = {label.name: label.value for label in ts.labels if label.value}
        problem = _problem(ts, labels)
        if problem:
            out.reject(problem)
            continue
        key = tuple(sorted(labels.items()))
        for s in ts.samples:
            stale = struct.unpack("<Q", struct.pack("<d", s.value))[0] == STALE_NAN_BITS
            out.samples.append(Sample(key, s.timestamp, None if stale else s.value))
        out.points += len(ts.samples)
    for m in request.metadata:
        out.metadata[m.metric_family_name] = Metadata(_TYPES.get(m.type, "unknown"), m.unit, m.help)
    return out


def _problem(ts: Any, labels: dict[str, str]) -> str:
    if ts.histograms:
        return "native histograms are not stored yet"
    names = [label.name for label in ts.labels]
    if len(names) != len(set(names)):
        return f"duplicate label names in {sorted(names)}"
    if not labels.get("__name__"):
        return "a series without a metric name (__name__)"
    return ""
