"""`histogram_quantile` over every step at once equals Prometheus's bucketQuantile step by
step (kept as `bucket_quantile`): missing and duplicate buckets, no `+Inf` bucket, counts
that fall or are NaN, zero observations, bounds at or below 0, and φ outside [0, 1] or NaN."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from watchkeeper.query._promql_functions import bucket_quantile, histogram_quantile
from watchkeeper.query._promql_values import Series, Vector

STEPS = 60


def _vector(rnd: random.Random) -> Vector:
    series = []
    for group in range(6):
        bounds = rnd.choice(
            [
                ["0.1", "0.5", "1", "+Inf"],
                ["-1", "0", "2.5", "+Inf"],
                ["0.1", "0.5", "1"],  # no +Inf bucket: NaN
                ["1", "1.0", "5", "+Inf"],  # one bound twice
                ["+Inf"],  # one bucket: NaN
                ["0", "+Inf"],
            ]
        )
        base = np.cumsum(rnd.choices([0.0, 1.0, 3.0, 10.0], k=STEPS)) * rnd.choice([0, 1])
        for i, le in enumerate(bounds):
            share = (i + 1) / len(bounds) if rnd.random() < 0.9 else rnd.random()  # may fall
            values = base * share + rnd.choice([0.0, 0.5])
            if rnd.random() < 0.2:
                values[rnd.randrange(STEPS)] = math.nan
            present = np.array([rnd.random() < 0.95 for _ in range(STEPS)])
            labels = {"__name__": "h_bucket", "g": str(group), "le": le}
            series.append(Series(labels, values, present))
    return Vector(series)


@pytest.mark.parametrize("seed", range(8))
def test_all_steps_at_once_equal_step_by_step(seed: int) -> None:
    rnd = random.Random(seed)
    vector = _vector(rnd)
    q = np.array([rnd.choice([0.0, 0.5, 0.95, 1.0, -0.1, 1.5, math.nan]) for _ in range(STEPS)])
    got = {s.labels["g"]: s for s in histogram_quantile(q, vector, STEPS).series}
    checked = 0
    for g, result in got.items():
        members = [s for s in vector.series if s.labels["g"] == g]
        for i in range(STEPS):
            buckets = [(float(s.labels["le"].replace("Inf", "inf")), float(s.values[i]))
                       for s in members if s.present[i]]  # fmt: skip
            assert result.present[i] == bool(buckets)
            if buckets:
                want = bucket_quantile(float(q[i]), buckets)
                assert result.values[i] == pytest.approx(want, nan_ok=True)
                checked += 1
    assert checked > 200


def test_zero_observations_below_the_first_bound_is_nan_not_an_error() -> None:
    # rank 0 in a first bucket of count 0: 0 / 0, which Prometheus (Go) makes NaN
    assert math.isnan(bucket_quantile(0.0, [(1.0, 0.0), (math.inf, 0.0)]))
    assert math.isnan(bucket_quantile(0.0, [(1.0, 0.0), (2.0, 0.0), (math.inf, 4.0)]))
