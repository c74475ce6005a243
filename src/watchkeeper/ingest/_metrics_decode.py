"""Decoding OTLP metric requests (protobuf and OTLP/JSON) into Prometheus samples.

Pure functions (but for a cache of label sets): bytes in, samples out. Every OTLP point
type becomes the series Prometheus would hold for it (names from `_metric_names`):

- gauge → one series; sum → one series (`_total` when monotonic); a sum or histogram with
  delta temporality is marked `delta`: the store adds it to the series' running total, so
  what is kept is cumulative, as Prometheus keeps counters;
- histogram → `_bucket{le}` (cumulative counts, `+Inf` included), `_sum`, `_count`;
- exponential histogram → classic `_bucket{le}` series at its bucket bounds (downscaled
  to at most `MAX_EXP_BUCKETS` buckets), `_sum`, `_count`: PromQL here has no native
  histograms, and `histogram_quantile` over these bounds is exact to the scale kept;
- summary → `{quantile}` series, `_sum`, `_count`.

A point flagged "no recorded value" is a staleness marker (value `None`). A request that
cannot be decoded raises `DecodeError`; a point without a timestamp is rejected alone and
counted for OTLP `partial_success` (`rejected_data_points`).

The samples come out as columns (`SampleColumns`). Gauges and sums, what most points are,
are read from their wire format (a few operations a point): a point's label set is looked
up by the bytes of its attributes in a `PointLabels` cache (per resource and metric), so a
series sent again is neither parsed nor sorted again; a message object per point was where
the time went.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import NumberDataPoint

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._metric_names import format_le, labels_of, metric_name, resource_labels
from watchkeeper.model import Labels, Metadata, Sample
from watchkeeper.store.metrics import SampleColumns

_DELTA = 1  # AggregationTemporality
_NO_RECORDED_VALUE = 1  # DataPointFlags
MAX_EXP_BUCKETS = 160  # an exponential histogram's buckets kept, at most, per sign
_PROJECT_ATTRIBUTE = "watchkeeper.project"
_MAX_ERRORS = 5
_FIXED64 = struct.Struct("<Q")
_SFIXED64 = struct.Struct("<q")
_DOUBLE = struct.Struct("<d")


@dataclass(slots=True)
class DecodedMetrics:
    """A decoded request: samples, each metric's metadata, and what was rejected."""

    samples: list[Sample] = field(default_factory=list)  # samples made in this process
    metadata: dict[str, Metadata] = field(default_factory=dict)
    points: int = 0  # OTLP data points accepted
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    projects: dict[int, str] = field(default_factory=dict)  # row of `columns` -> its project
    columns: SampleColumns | None = None  # decoded samples as columns, not in `samples`

    @property
    def error_message(self) -> str:
        """What `partial_success.error_message` says."""
        return "; ".join(self.errors)

    def reject(self, message: str) -> None:
        """Count one rejected point and keep the first few distinct reasons."""
        self.rejected += 1
        if len(self.errors) < _MAX_ERRORS and message not in self.errors:
            self.errors.append(message)

    def all_samples(self) -> list[Sample]:
        """Every sample, one object each (for tests and small paths)."""
        columns = self.columns.to_samples() if self.columns is not None else []
        return self.samples + columns


class SampleLists:
    """The samples of a request while it is decoded: each label set once (its slot), per
    sample its slot, time, value and flags; `done` gives them as `SampleColumns`."""

    def __init__(self) -> None:
        self.slots: dict[Labels, int] = {}
        self.index: list[int] = []
        self.t_ms: list[int] = []
        self.values: list[float] = []
        self.stale: list[bool] = []
        self.delta: list[bool] = []  # empty: no sample is a delta

    def add(self, labels: Labels, t_ms: int, value: float, stale: bool, delta: bool) -> None:
        """One sample (`value` is not read where `stale`)."""
        self.index.append(self.slots.setdefault(labels, len(self.slots)))
        self.t_ms.append(t_ms)
        self.values.append(value)
        self.stale.append(stale)
        self.delta.append(delta)

    def done(self) -> SampleColumns:
        """The samples as columns."""
        n = len(self.t_ms)
        return SampleColumns(
            series=list(self.slots),
            index=np.array(self.index, np.int64),
            t_ms=np.array(self.t_ms, np.int64),
            values=np.array(self.values, np.float64),
            stale=np.array(self.stale, np.bool_),
            delta=np.array(self.delta, np.bool_) if self.delta else np.zeros(n, np.bool_),
        )


_Context = tuple[tuple[tuple[str, str], ...], str]


class PointLabels:
    """Label sets of number points by their attributes' bytes, per (resource labels,
    metric name), of the series seen lately. Bounded: emptied when full. Shared by the
    request path and the writer (a dict's get and set are atomic)."""

    def __init__(self, size: int = 500_000) -> None:
        self._size = size
        self._held = 0
        self._known: dict[_Context, dict[bytes, Labels]] = {}

    def of(self, resource: tuple[tuple[str, str], ...], name: str) -> dict[bytes, Labels]:
        """The label sets of one metric of one resource, by attribute bytes (to fill)."""
        if self._held >= self._size:
            self._known.clear()
            self._held = 0
        known = self._known.get((resource, name))
        if known is None:
            known = self._known[(resource, name)] = {}
        return known

    def added(self, n: int) -> None:
        """Count `n` label sets put in a dict given by `of`."""
        self._held += n


def parse(body: bytes, encoding: str) -> ExportMetricsServiceRequest:
    """The request message of a protobuf or OTLP/JSON body; `DecodeError` if it is not one."""
    request = ExportMetricsServiceRequest()
    if encoding == "protobuf":
        try:
            request.ParseFromString(body)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(f"body is not an OTLP ExportMetricsServiceRequest: {exc}") from None
        return request
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("body is not an OTLP/JSON ExportMetricsServiceRequest object")
    _drop_exemplars(doc)  # their ids are hex in OTLP/JSON, not proto3 JSON's base64
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise DecodeError(f"body is not an OTLP/JSON ExportMetricsServiceRequest: {exc}") from None
    return request


def _drop_exemplars(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("exemplars", None)
        for value in node.values():
            _drop_exemplars(value)
    elif isinstance(node, list):
        for value in node:
            _drop_exemplars(value)


def decode_metrics(body: bytes, encoding: str, labels: PointLabels | None = None) -> DecodedMetrics:
    """Decode a whole `ExportMetricsServiceRequest` into samples."""
    return to_samples(parse(body, encoding), labels or PointLabels())


def _any_value(v: Any) -> str:
    kind = v.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return str(v.string_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        return repr(v.double_value)
    if kind == "bytes_value":
        return bytes(v.bytes_value).hex()
    inner = v.array_value.values if kind == "array_value" else v.kvlist_value.values
    if kind == "array_value":
        return orjson.dumps([_any_value(x) for x in inner]).decode()
    return orjson.dumps({kv.key: _any_value(kv.value) for kv in inner}).decode()


def _attrs(kvs: Any) -> dict[str, str]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def to_samples(
    request: ExportMetricsServiceRequest, labels: PointLabels | None = None
) -> DecodedMetrics:
    """The samples of a parsed request (see the module docstring)."""
    out, cols, cache = DecodedMetrics(), SampleLists(), labels or PointLabels()
    for rm in request.resource_metrics:
        attrs = _attrs(rm.resource.attributes)
        project = attrs.get(_PROJECT_ATTRIBUTE, "")
        base = resource_labels({k: v for k, v in attrs.items() if k != _PROJECT_ATTRIBUTE})
        resource = _sorted(base)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                first = len(cols.t_ms)
                _metric(metric, base, resource, out, cols, cache)
                if project:
                    for i in range(first, len(cols.t_ms)):
                        out.projects[i] = project
    out.columns = cols.done()
    return out


def _metric(
    metric: Any,
    base: dict[str, str],
    resource: tuple[tuple[str, str], ...],
    out: DecodedMetrics,
    cols: SampleLists,
    cache: PointLabels,
) -> None:
    kind = metric.WhichOneof("data")
    if kind is None:
        return  # a metric without data: nothing to keep, nothing wrong
    data = getattr(metric, kind)
    monotonic = kind == "sum" and data.is_monotonic
    short = {"exponential_histogram": "histogram"}.get(kind, kind)
    name = metric_name(metric.name, metric.unit, short, monotonic)
    prom_type = {"sum": "counter" if monotonic else "gauge"}.get(short, short)
    out.metadata[name] = Metadata(prom_type, metric.unit, metric.description)
    delta = kind in ("sum", "histogram", "exponential_histogram") and (
        data.aggregation_temporality == _DELTA
    )
    if kind in ("gauge", "sum"):
        points = _NumberPoints(cache.of(resource, name), base, name, delta)
        points.read(data.SerializeToString(), cols)
        cache.added(points.new)
        out.points += points.read_points
        if points.untimed:
            out.reject(f"{metric.name}: a data point has no time_unix_nano")
            out.rejected += points.untimed - 1
        return
    emit = _EMITTERS[kind]
    for point in data.data_points:
        if not point.time_unix_nano:
            out.reject(f"{metric.name}: a data point has no time_unix_nano")
            continue
        labels = {**base, **labels_of(_attrs(point.attributes))}
        t_ms = point.time_unix_nano // 1_000_000
        stale = bool(point.flags & _NO_RECORDED_VALUE)
        for suffix, extra, value in emit(point):
            series = {**labels, **extra, "__name__": name + suffix}
            cols.add(_sorted(series), t_ms, value, stale, delta)
        out.points += 1


class _NumberPoints:
    """The points of one gauge or sum, read from the wire format of the (parsed, so valid)
    message: `data_points` (field 1) of `NumberDataPoint`s."""

    def __init__(
        self, known: dict[bytes, Labels], base: dict[str, str], name: str, delta: bool
    ) -> None:
        self.known = known
        self.base = base
        self.name = name
        self.delta = delta
        self.new = 0  # label sets added to `known`
        self.untimed = 0  # points without a time, rejected
        self.read_points = 0  # points kept

    def read(self, raw: bytes, cols: SampleLists) -> None:
        """Every point of a serialized `Gauge` or `Sum` into the columns."""
        pos, end = 0, len(raw)
        while pos < end:
            tag, pos = _varint_at(raw, pos)
            if tag == 0x0A:  # a data point
                size, pos = _varint_at(raw, pos)
                self._point(raw, pos, pos + size, cols)
                pos += size
            else:  # aggregation_temporality, is_monotonic: read from the message
                pos = _skip(raw, pos, tag)

    def _point(self, raw: bytes, pos: int, end: int, cols: SampleLists) -> None:
        attrs, t_ns, value, flags = b"", 0, 0.0, 0
        while pos < end:
            start, tag = pos, raw[pos]  # the fields read here have one-byte tags
            pos += 1
            if tag == 0x3A:  # attributes (7): their bytes are the label set's key
                size = raw[pos]
                if size < 0x80:
                    pos += 1 + size
                else:
                    size, pos = _varint_at(raw, pos)
                    pos += size
                attrs += raw[start:pos]
            elif tag == 0x19:  # time_unix_nano (3)
                t_ns = _FIXED64.unpack_from(raw, pos)[0]
                pos += 8
            elif tag == 0x21:  # as_double (4)
                value = _DOUBLE.unpack_from(raw, pos)[0]
                pos += 8
            elif tag == 0x31:  # as_int (6)
                value = float(_SFIXED64.unpack_from(raw, pos)[0])
                pos += 8
            elif tag == 0x40:  # flags (8)
                flags, pos = _varint_at(raw, pos)
            else:  # start time, exemplars, a field of a later version
                tag, pos = _varint_at(raw, start)
                pos = _skip(raw, pos, tag)
        if not t_ns:
            self.untimed += 1
            return
        labels = self.known.get(attrs)
        if labels is None:
            labels = self.known[attrs] = self._labels(attrs)
            self.new += 1
        cols.add(labels, t_ns // 1_000_000, value, bool(flags & _NO_RECORDED_VALUE), self.delta)
        self.read_points += 1

    def _labels(self, attrs: bytes) -> Labels:
        point = NumberDataPoint()
        point.ParseFromString(attrs)
        labels = {**self.base, **labels_of(_attrs(point.attributes))}
        return _sorted({**labels, "__name__": self.name})


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it (the message was parsed: valid)."""
    n, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return n, pos
        shift += 7


def _skip(data: bytes, pos: int, tag: int) -> int:
    """The position after a field not read here (by its wire type)."""
    wire = tag & 7
    if wire == 0:
        return _varint_at(data, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    size, pos = _varint_at(data, pos)  # wire type 2 (groups are not in OTLP)
    return pos + size


def _sorted(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


_Emitted = Iterator[tuple[str, dict[str, str], float]]


def _number(point: Any) -> _Emitted:
    value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
    yield "", {}, float(value)


def _histogram(point: Any) -> _Emitted:
    total = 0
    bounds = list(point.explicit_bounds)
    for i, count in enumerate(point.bucket_counts):
        total += count
        bound = bounds[i] if i < len(bounds) else math.inf
        yield "_bucket", {"le": format_le(bound)}, float(total)
    if not point.bucket_counts:
        yield "_bucket", {"le": "+Inf"}, float(point.count)
    yield "_count", {}, float(point.count)
    if point.HasField("sum"):
        yield "_sum", {}, point.sum


def _exp_bounds(scale: int, offset: int, counts: list[int]) -> tuple[int, int, list[int]]:
    """Downscale an exponential histogram's buckets until at most MAX_EXP_BUCKETS remain."""
    while len(counts) > MAX_EXP_BUCKETS:
        merged: dict[int, int] = {}
        for i, c in enumerate(counts):
            merged[(offset + i) >> 1] = merged.get((offset + i) >> 1, 0) + c
        offset = min(merged)
        counts = [merged.get(offset + i, 0) for i in range(max(merged) - offset + 1)]
        scale -= 1
    return scale, offset, counts


def _exponential(point: Any) -> _Emitted:
    # Bucket i (index offset+i) holds (base**index, base**(index+1)], base = 2**2**-scale.
    zero = float(point.zero_threshold)
    cumulative = 0
    neg_scale, neg_off, neg = _exp_bounds(
        point.scale, point.negative.offset, list(point.negative.bucket_counts)
    )
    for i in reversed(range(len(neg))):  # most negative first
        cumulative += neg[i]
        bound = -(2.0 ** ((neg_off + i) * 2.0**-neg_scale))
        yield "_bucket", {"le": format_le(bound)}, float(cumulative)
    cumulative += point.zero_count
    yield "_bucket", {"le": format_le(zero)}, float(cumulative)
    pos_scale, pos_off, pos = _exp_bounds(
        point.scale, point.positive.offset, list(point.positive.bucket_counts)
    )
    for i, c in enumerate(pos):
        cumulative += c
        bound = 2.0 ** ((pos_off + i + 1) * 2.0**-pos_scale)
        if bound > zero:
            yield "_bucket", {"le": format_le(bound)}, float(cumulative)
    yield "_bucket", {"le": "+Inf"}, float(point.count)
    yield "_count", {}, float(point.count)
    if point.HasField("sum"):
        yield "_sum", {}, point.sum


def _summary(point: Any) -> _Emitted:
    for q in point.quantile_values:
        yield "", {"quantile": format_le(q.quantile)}, q.value
    yield "_count", {}, float(point.count)
    yield "_sum", {}, point.sum


_EMITTERS = {
    "gauge": _number,
    "sum": _number,
    "histogram": _histogram,
    "exponential_histogram": _exponential,
    "summary": _summary,
}
