"""OTLP gauges and sums read from their wire format with a cache of label sets: the samples
are the ones the message objects say, point by point (random requests: int and double
values, NaN, points flagged "no recorded value", points without a time, attributes of
every kind, the same attributes twice, several resources and projects)."""

from __future__ import annotations

import math
import random
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from watchkeeper.ingest._metric_names import labels_of, metric_name, resource_labels
from watchkeeper.ingest._metrics_decode import PointLabels, decode_metrics
from watchkeeper.ingest._metrics_ingest import _parts
from watchkeeper.ingest._spool import FLAG_PROJECT_FROM_RESOURCE, Position, Record
from watchkeeper.model import Sample


def _value(v: Any) -> str:
    kind = v.WhichOneof("value")
    return {
        "string_value": lambda: v.string_value,
        "int_value": lambda: str(v.int_value),
        "bool_value": lambda: "true" if v.bool_value else "false",
    }[kind]()


def _oracle(request: ExportMetricsServiceRequest) -> tuple[list[Sample], int, list[str]]:
    """The samples, points kept and projects (per sample) of a request of gauges and sums,
    read from the message objects."""
    samples, points, projects = [], 0, []
    for rm in request.resource_metrics:
        attrs = {kv.key: _value(kv.value) for kv in rm.resource.attributes}
        project = attrs.pop("watchkeeper.project", "")
        base = resource_labels(attrs)
        for metric in rm.scope_metrics[0].metrics:
            kind = metric.WhichOneof("data")
            data = getattr(metric, kind)
            monotonic = kind == "sum" and data.is_monotonic
            name = metric_name(metric.name, metric.unit, kind, monotonic)
            delta = kind == "sum" and data.aggregation_temporality == 1
            for p in data.data_points:
                if not p.time_unix_nano:
                    continue
                labels = {**base, **labels_of({a.key: _value(a.value) for a in p.attributes})}
                labels["__name__"] = name
                value = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
                stale = bool(p.flags & 1)
                t_ms = p.time_unix_nano // 1_000_000
                samples.append(
                    Sample(tuple(sorted(labels.items())), t_ms, None if stale else value, delta)
                )
                projects.append(project)
                points += 1
    return samples, points, projects


def _request(rng: random.Random) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    for r in range(rng.randrange(1, 4)):
        rm = request.resource_metrics.add()
        for key, value in (("service.name", f"svc{r % 2}"), ("host.name", "h")):
            kv = rm.resource.attributes.add()
            kv.key, kv.value.string_value = key, value
        if rng.random() < 0.5:
            kv = rm.resource.attributes.add()
            kv.key, kv.value.string_value = "watchkeeper.project", f"p{r}"
        sm = rm.scope_metrics.add()
        for m in range(rng.randrange(1, 4)):
            metric = sm.metrics.add()
            metric.name, metric.unit = f"m.{m}", rng.choice(["", "s", "1", "By"])
            kind = rng.choice(["gauge", "sum"])
            data = getattr(metric, kind)
            data.SetInParent()  # a metric of no point is one of its kind still
            if kind == "sum":
                data.is_monotonic = rng.random() < 0.5
                data.aggregation_temporality = rng.choice([1, 2])
            for _ in range(rng.randrange(0, 8)):
                p = data.data_points.add()
                if rng.random() < 0.9:
                    p.time_unix_nano = rng.randrange(1, 3) * 1_700_000_000_123_456_789
                if rng.random() < 0.3:
                    p.start_time_unix_nano = 1_600_000_000_000_000_000
                if rng.random() < 0.5:
                    p.as_double = rng.choice([0.0, -1.5, 2.25, math.inf, math.nan])
                elif rng.random() < 0.8:
                    p.as_int = rng.choice([0, -7, 2**62])
                if rng.random() < 0.2:
                    p.flags = 1
                for key in rng.sample(["route", "code", "a.b", "a_b", "2x"], rng.randrange(0, 4)):
                    a = p.attributes.add()
                    a.key = key
                    choice = rng.randrange(3)
                    if choice == 0:
                        a.value.string_value = rng.choice(["/a", "/b", ""])
                    elif choice == 1:
                        a.value.int_value = rng.randrange(3)
                    else:
                        a.value.bool_value = True
    return request


def _same(a: list[Sample], b: list[Sample]) -> bool:
    return [(s.labels, s.t_ms, repr(s.value), s.delta) for s in a] == [
        (s.labels, s.t_ms, repr(s.value), s.delta) for s in b
    ]


def test_number_points_from_the_wire_are_what_the_messages_say() -> None:
    rng = random.Random(13)
    cache = PointLabels()
    for _ in range(200):
        request = _request(rng)
        want, points, projects = _oracle(request)
        body = request.SerializeToString()
        for labels in (PointLabels(), cache):  # a series seen before comes from the cache
            decoded = decode_metrics(body, "protobuf", labels)
            assert _same(decoded.all_samples(), want)
            assert decoded.points == points
            untimed = sum(
                1
                for rm in request.resource_metrics
                for m in rm.scope_metrics[0].metrics
                for p in getattr(m, m.WhichOneof("data")).data_points
                if not p.time_unix_nano
            )
            assert decoded.rejected == untimed
            assert [decoded.projects.get(i, "") for i in range(len(want))] == projects


def test_points_of_several_projects_are_written_to_each() -> None:
    rng = random.Random(5)
    for _ in range(50):
        request = _request(rng)
        want, _points, projects = _oracle(request)
        decoded = decode_metrics(request.SerializeToString(), "protobuf")
        record = Record(Position(0, 0), "key", "protobuf", b"", 0, FLAG_PROJECT_FROM_RESOURCE)
        got: dict[str, list[Sample]] = {}
        for project, cols, _meta in _parts(record, decoded):
            assert len(set(cols.series)) == len(cols.series) == len(set(cols.index.tolist()))
            got.setdefault(project, []).extend(cols.to_samples())
        for project in set(projects):
            mine = [s for s, p in zip(want, projects, strict=True) if p == project]
            assert _same(got.pop(project if project else "key"), mine)
        assert all(not v for v in got.values())
