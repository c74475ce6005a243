"""`rate`, `increase` and `delta` over every series and step at once equal the same function
window by window (Prometheus's extrapolatedRate, kept as `_extrapolated`), with counter
resets, NaN values, gaps and windows of 0 or 1 sample, whatever the chunking."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from watchkeeper.query._promql_functions import _extrapolated, _extrapolated_matrix
from watchkeeper.query._promql_values import Matrix, RangeSeries


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
    got = {s.labels["k"]: s for s in _extrapolated_matrix(matrix, counter, rate, cells)}
    starts = matrix.ends - matrix.range_ms
    checked = 0
    for rs in matrix.series:
        lo = np.searchsorted(rs.t_ms, starts, side="right")
        hi = np.searchsorted(rs.t_ms, matrix.ends, side="right")
        for i in range(len(matrix.ends)):
            a, b = int(lo[i]), int(hi[i])
            want = _extrapolated(rs.t_ms[a:b], rs.values[a:b], int(starts[i]),
                                 int(matrix.ends[i]), counter, rate)  # fmt: skip
            s = got.get(rs.labels["k"])
            if want is None:
                assert s is None or not s.present[i]
                continue
            checked += 1
            assert s is not None and s.present[i]
            assert s.values[i] == pytest.approx(want, rel=1e-9, nan_ok=True)
    assert checked > 100
