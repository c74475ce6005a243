"""The remote-write decoder reads the wire format by hand: it must say what the protobuf
runtime says of the same bytes (samples, rejected series, metadata, and which bodies are
not a WriteRequest at all), whatever order and form the fields come in."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from watchkeeper.errors import DecodeError
from watchkeeper.ingest._remote_write import (
    STALE_NAN_BITS,
    LabelCache,
    WriteRequest,
    decode_remote_write,
)

STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def _expected(body: bytes) -> tuple[list[Any], int, dict[str, Any]]:
    """What the protobuf runtime reads: (labels, t, value or None) per sample, the series
    rejected, the metadata."""
    request = WriteRequest()
    request.ParseFromString(body)
    samples, rejected = [], 0
    for ts in request.timeseries:
        names = [label.name for label in ts.labels]
        labels = {label.name: label.value for label in ts.labels if label.value}
        if ts.histograms or len(names) != len(set(names)) or not labels.get("__name__"):
            rejected += 1
            continue
        for s in ts.samples:
            bits = struct.unpack("<Q", struct.pack("<d", s.value))[0]
            value = None if bits == STALE_NAN_BITS else s.value
            samples.append((tuple(sorted(labels.items())), s.timestamp, value))
    meta = {m.metric_family_name: (m.type, m.unit, m.help) for m in request.metadata}
    return samples, rejected, meta


def _decoded(body: bytes, cache: LabelCache | None = None) -> tuple[list[Any], int, dict[str, Any]]:
    out = decode_remote_write(body, cache)
    assert out.columns is not None and not out.samples
    samples = [(s.labels, s.t_ms, s.value) for s in out.columns.to_samples()]
    types = {"unknown": 0, "counter": 1, "gauge": 2}
    meta = {k: (types[m.type], m.unit, m.help) for k, m in out.metadata.items()}
    assert out.points == len(samples)
    return samples, out.rejected, meta


def _same(a: list[Any], b: list[Any]) -> bool:
    def key(x: Any) -> Any:
        return (x[0], x[1], "nan" if isinstance(x[2], float) and math.isnan(x[2]) else x[2])

    return [key(x) for x in a] == [key(x) for x in b]


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def _request() -> bytes:
    request = WriteRequest()
    cases: list[tuple[dict[str, str], list[tuple[int, float]]]] = [
        ({"__name__": "up", "job": "a"}, [(1000, 1.0), (2000, 0.0), (3000, STALE)]),
        ({"__name__": "t", "x": "y" * 300}, [(0, math.nan), (-5, math.inf), (2**62, -0.5)]),
        ({"__name__": "up", "job": "a"}, [(4000, 2.0)]),  # the same series again
        ({"__name__": "e", "empty": ""}, [(1, 1.0)]),  # an empty value: no label
        ({"job": "nameless"}, [(1, 1.0)]),
        ({"__name__": "none"}, []),
    ]
    for labels, samples in cases:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    dup = request.timeseries.add()
    dup.labels.add(name="__name__", value="d")
    dup.labels.add(name="__name__", value="d2")
    dup.samples.add(timestamp=1, value=1.0)
    native = request.timeseries.add()
    native.labels.add(name="__name__", value="native")
    native.histograms.add()
    m = request.metadata.add(type=1, metric_family_name="up", help="Up.", unit="")
    assert m.type == 1
    return request.SerializeToString()


def test_every_form_of_series_and_sample_reads_as_the_runtime_reads_it() -> None:
    body = _request()
    samples, rejected, meta = _decoded(body)
    want_samples, want_rejected, want_meta = _expected(body)
    assert _same(samples, want_samples)
    assert (rejected, meta) == (want_rejected, want_meta) == (3, {"up": (1, "", "Up.")})
    assert (samples[2][2], samples[4][1]) == (None, -5)  # the staleness marker; a negative time


def test_fields_out_of_order_and_unknown_fields() -> None:
    label = _field(1, _field(1, b"__name__") + _field(2, b"late"))
    sample_reordered = _field(2, b"\x10" + _varint(7000) + b"\x09" + struct.pack("<d", 3.5))
    unknown = _varint(15 << 3 | 0) + _varint(99) + _varint(14 << 3 | 5) + b"abcd"
    series = _field(1, sample_reordered + unknown + label + _field(3, b"exemplar"))
    body = series + _field(9, b"unknown top-level field") + _varint(8 << 3 | 1) + b"12345678"
    samples, rejected, _ = _decoded(body)
    assert samples == [((("__name__", "late"),), 7000, 3.5)]
    assert _same(samples, _expected(body)[0]) and rejected == 0


def test_a_cut_or_corrupt_body_is_refused_as_the_runtime_refuses_it() -> None:
    body = _request()
    for cut in range(len(body)):
        try:
            want = _expected(body[:cut])
        except Exception:
            with pytest.raises(DecodeError):
                decode_remote_write(body[:cut])
            continue
        got = _decoded(body[:cut])
        assert _same(got[0], want[0]) and got[1:] == want[1:], cut
    for bad in (b"\x0a\xff", b"\x0b\x00", b"\x00", b"\x0a\x05\x0a\x03\x0a\x01", b"\x0f"):
        with pytest.raises(DecodeError):
            decode_remote_write(bad)


def test_a_series_seen_again_reads_the_same_through_a_small_cache() -> None:
    cache = LabelCache(size=2)  # emptied as it fills: every series is still read right
    body = _request()
    first = _decoded(body, cache)
    for _ in range(3):
        assert _same(_decoded(body, cache)[0], first[0])
    assert _same(first[0], _expected(body)[0])


def test_a_label_that_is_not_utf8_rejects_its_series_only() -> None:
    def series(value: bytes, t: int) -> bytes:
        label = _field(1, _field(1, b"__name__") + _field(2, value))
        return _field(1, label + _field(2, b"\x10" + _varint(t)))

    out = decode_remote_write(series(b"\xff\xfe", 1) + series(b"ok", 2))
    assert out.columns is not None
    assert [(s.labels, s.t_ms) for s in out.columns.to_samples()] == [((("__name__", "ok"),), 2)]
    assert (out.points, out.rejected) == (1, 1)
    assert out.errors == ["a label name or value is not valid UTF-8"]


def test_labels_out_of_order_come_out_sorted() -> None:
    labels = _field(1, _field(1, b"job") + _field(2, b"a")) + _field(
        1, _field(1, b"__name__") + _field(2, b"up")
    )
    body = _field(1, labels + _field(2, b"\x10" + _varint(5)))
    samples, rejected, _ = _decoded(body)
    assert samples == [((("__name__", "up"), ("job", "a")), 5, 0.0)] and rejected == 0
    assert _same(samples, _expected(body)[0])
