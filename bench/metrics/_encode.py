"""Request bodies for the metrics benchmark: Prometheus remote-write (protobuf written by
hand from precomputed label bytes, so the sender's CPU goes to sending) and OTLP/protobuf."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import cramjam
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

Labels = tuple[tuple[str, str], ...]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def label_bytes(labels: Labels) -> bytes:
    """A series' `labels` fields of a remote-write TimeSeries (sorted by name, as required)."""
    return b"".join(
        _field(0x0A, _field(0x0A, k.encode()) + _field(0x12, v.encode())) for k, v in sorted(labels)
    )


def remote_write(series: Sequence[bytes], t_ms: int, values: Sequence[float]) -> bytes:
    """A snappy-compressed WriteRequest: each series (its label bytes) with one sample."""
    stamp = b"\x10" + _varint(t_ms)
    parts = []
    for labels, value in zip(series, values, strict=True):
        sample = _field(0x12, b"\x09" + struct.pack("<d", value) + stamp)
        parts.append(_field(0x0A, labels + sample))
    return bytes(cramjam.snappy.compress_raw(b"".join(parts)))


def otlp_gauges(name: str, points: Sequence[Labels], t_ms: int, values: Sequence[float]) -> bytes:
    """An OTLP/protobuf request of one gauge with a data point per label set."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    attr = rm.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "bench"
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = name
    t_ns = t_ms * 1_000_000
    for labels, value in zip(points, values, strict=True):
        dp = metric.gauge.data_points.add()
        dp.time_unix_nano = t_ns
        dp.as_double = value
        for k, v in labels:
            a = dp.attributes.add()
            a.key, a.value.string_value = k, v
    return request.SerializeToString()
