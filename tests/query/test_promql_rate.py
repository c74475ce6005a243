"""`rate`, `increase` and `delta` over every series and step at once equal the same function
window by window (Prometheus's extrapolatedRate, kept as `extrapolated`), with counter
resets, NaN values, gaps and windows of 0 or 1 sample, whatever the chunking; and through
the store, with staleness markers left out of the windows."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from watchkeeper.model import Sample
from watchkeeper.query._promql import Engine
from watchkeeper.query._promql_values import Matrix, RangeSeries, Vector
from watchkeeper.query._promql_windows import extrapolated, extrapolated_matrix, window_bounds
from watchkeeper.store.metrics import MetricsStore


def _matrix(seed: int, n_series: int, steps: int, range_ms: int) -> Matrix:
    rnd = random.Random(seed)
    series = []
    for k in range(n_series):
        t, total, times, values = 0, 0.0, [], []
        for _ in range(rnd.randint(0, 60)):
            t += rnd.choice((1000, 15_000, 15_000, 30_000, 200_000))
            total += rnd.uniform(0, 50)
            if rnd.random() < 0.05:
                total = rnd.uniform(0, 5)  # a counter reset
            times.append(t)
            values.append(math.nan if rnd.random() < 0.02 else total)
        labels = {"__name__": "c_total", "k": str(k)}
        series.append(RangeSeries(labels, np.array(times, np.int64), np.array(values)))
    ends = np.arange(0, steps * 20_000, 20_000, dtype=np.int64)
    return Matrix.of(series, range_ms, ends)


@pytest.mark.parametrize(("counter", "rate"), [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("cells", [7, 1000, 1_000_000])
def test_all_at_once_equals_window_by_window(counter: bool, rate: bool, cells: int) -> None:
    matrix = _matrix(seed=cells, n_series=40, steps=90, range_ms=60_000)
    got = {s.labels["k"]: s for s in extrapolated_matrix(matrix, counter, rate, cells)}
    starts = matrix.ends - matrix.range_ms
    checked = 0
    for rs in matrix.series:
        lo = np.searchsorted(rs.t_ms, starts, side="right")
        hi = np.searchsorted(rs.t_ms, matrix.ends, side="right")
        for i in range(len(matrix.ends)):
            a, b = int(lo[i]), int(hi[i])
            want = extrapolated(rs.t_ms[a:b], rs.values[a:b], int(starts[i]),
                                 int(matrix.ends[i]), counter, rate)  # fmt: skip
            s = got.get(rs.labels["k"])
            if want is None:
                assert s is None or not s.present[i]
                continue
            checked += 1
            assert s is not None and s.present[i]
            assert s.values[i] == pytest.approx(want, rel=1e-9, nan_ok=True)
    assert checked > 100


def test_window_bounds_by_counting_or_one_search_equal_one_search_per_series() -> None:
    rnd = random.Random(3)
    for scale in (1, 2**49):  # 2**49: a (series, time) key would overflow; one per series
        sizes = [rnd.randint(0, 30) for _ in range(20)]
        t = np.concatenate(
            [np.sort(rnd.sample(range(0, 5000), n)).astype(np.int64) * scale for n in sizes]
        )
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        even = np.arange(-150, 5200, 97, dtype=np.int64)
        uneven = np.cumsum([rnd.randint(1, 300) for _ in range(40)]).astype(np.int64)
        # counted (291: three steps, both ends from one count), searched
        for ends, width in itertools.product(
            (even * scale, uneven * scale, even[:1] * scale), (300, 291)
        ):
            starts = ends - width * scale
            lo, hi = window_bounds(t, offsets, starts, ends)
            for k in range(len(sizes)):
                a, b = offsets[k], offsets[k + 1]
                assert list(lo[k]) == list(np.searchsorted(t[a:b], starts, side="right") + a)
                assert list(hi[k]) == list(np.searchsorted(t[a:b], ends, side="right") + a)


def test_rate_through_the_store_leaves_stale_markers_out() -> None:
    store = MetricsStore()
    rnd = random.Random(5)
    kept: dict[str, list[tuple[int, float]]] = {}
    samples = []
    for k in range(6):
        labels = (("__name__", "c_total"), ("k", str(k)))
        total, points = 0.0, []
        for i in range(40):
            t = i * 15_000 + 500
            if k == 2 or rnd.random() < 0.2:  # series 2 holds only staleness markers
                samples.append(Sample(labels, t, None))
                continue
            total = total + rnd.uniform(0, 9) if rnd.random() > 0.05 else 0.0  # a reset
            samples.append(Sample(labels, t, total))
            points.append((t, total))
        kept[str(k)] = points
    store.write("p", samples)
    steps = np.arange(0, 40 * 15_000, 20_000, dtype=np.int64)
    result = Engine(store).evaluate("p", "rate(c_total[1m])", steps)
    assert isinstance(result, Vector)
    got = {s.labels["k"]: s for s in result.series}
    assert "2" not in got
    for k, points in kept.items():
        t = np.array([p[0] for p in points], np.int64)
        v = np.array([p[1] for p in points])
        for i, end in enumerate(steps):
            a, b = np.searchsorted(t, end - 60_000, "right"), np.searchsorted(t, end, "right")
            want = extrapolated(t[a:b], v[a:b], int(end) - 60_000, int(end), True, True)
            if want is None:
                assert k not in got or not got[k].present[i]
            else:
                assert got[k].present[i]
                assert got[k].values[i] == pytest.approx(want, rel=1e-9)
