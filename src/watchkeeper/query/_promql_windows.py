"""Range vectors' windows over every series and step of a query at once: where each
window's samples lie (`window_bounds`), and `rate`/`increase`/`delta` of all the windows
with numpy, to Prometheus's extrapolatedRate (`extrapolated`, one window, is the
reference: tests hold the two equal)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from watchkeeper.query._promql_values import Floats, Ints, Matrix, Series, Times, without_name


def extrapolated(
    t: Any, v: Floats, start: int, end: int, counter: bool, rate: bool
) -> float | None:
    """Prometheus's extrapolatedRate for one window (the reference the rest follows)."""
    if len(v) < 2:
        return None
    result = float(v[-1] - v[0])
    if counter:
        prev = v[:-1]
        result += float(np.sum(np.where(v[1:] < prev, prev, 0.0)))
    to_start = (t[0] - start) / 1e3
    to_end = (end - t[-1]) / 1e3
    sampled = (t[-1] - t[0]) / 1e3
    if sampled <= 0:
        return None
    average = sampled / (len(v) - 1)
    if counter and result > 0 and v[0] >= 0:
        to_start = min(to_start, sampled * (v[0] / result))
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    if rate:
        result /= (end - start) / 1e3
    return float(result)


def _extrapolated_steps(
    t: Any, v: Floats, running: Floats | None, starts: Any, ends: Any, lo: Any, hi: Any, rate: bool
) -> tuple[Floats, Any]:
    """`extrapolated` over many windows at once (numpy, element by element): the samples of
    window i are `t[lo[i]:hi[i]]`, `v[...]`; `running` is the running sum of each sample's
    counter-reset correction (None: not a counter). The same arithmetic, per window."""
    n = hi - lo
    ok = n >= 2
    a, b = np.minimum(lo, len(v) - 1), np.maximum(hi - 1, 0)
    first_v, last_v = v[a], v[b]
    first_t, last_t = t[a].astype(np.float64), t[b].astype(np.float64)
    result = last_v - first_v
    if running is not None:
        result = result + (running[b] - running[a])
    to_start = (first_t - starts) / 1e3
    to_end = (ends - last_t) / 1e3
    sampled = (last_t - first_t) / 1e3
    ok &= sampled > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        average = sampled / np.maximum(n - 1, 1)
        if running is not None:
            capped = np.minimum(to_start, sampled * (first_v / result))
            to_start = np.where((result > 0) & (first_v >= 0), capped, to_start)
        threshold = average * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, average / 2)
        interval += np.where(to_end < threshold, to_end, average / 2)
        result = result * (interval / sampled)
        if rate:
            result = result / ((ends - starts) / 1e3)
    return np.where(ok, result, np.nan), ok


#: Windows (series x steps) computed at once. A dozen arrays of this many values stay in
#: the CPU's cache and under the allocator's mmap threshold (256 KiB, `ingest._gc`): with
#: a million, each array was fresh pages, and the kernel's time to give them was as much
#: as the arithmetic's (the bench's rate over 6 h of 5k series: 520 ms of CPU, not 340).
_CELLS = 32_768
_PARALLEL_CHUNKS = 8  # from this many chunks on, computed on `_THREADS` threads
_THREADS = 2


def extrapolated_matrix(
    matrix: Matrix, counter: bool, rate: bool, cells: int = _CELLS
) -> list[Series]:
    """rate/increase/delta of every series at every step, about `cells` windows at a time
    (see `_extrapolated_chunk`)."""
    per = max(1, cells // max(1, len(matrix.ends)))
    n = len(matrix.labels)

    def chunk(k: int) -> list[Series]:
        return _extrapolated_chunk(matrix, k, min(k + per, n), counter, rate)

    starts = range(0, n, per)
    if len(starts) < _PARALLEL_CHUNKS:
        return [s for k in starts for s in chunk(k)]
    # numpy lets go of the GIL in its loops: the chunks on two threads use both cores
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="wk-promql") as pool:
        return [s for part in pool.map(chunk, starts) for s in part]


def window_bounds(t: Ints, offsets: Ints, starts: Times, ends: Times) -> tuple[Ints, Ints]:
    """For series k (samples `t[offsets[k]:offsets[k + 1]]`, in time order) and step i, the
    index range `[lo, hi)` in `t` of its samples in (starts[i], ends[i]]: one search of a
    key (series, time) for all series, not one per series; or, when the steps are evenly
    spaced (a range query's, moved back by one offset), by counting (`_counted_bounds`)."""
    n = len(offsets) - 1
    if len(ends) and _evenly_spaced(starts, ends):
        m = len(ends)
        step = int(ends[1] - ends[0]) if m > 1 else 1
        firsts = offsets[:-1, None]
        width = int(ends[0] - starts[0])
        if width % step == 0 and width // step <= m:
            # each window starts where the one `width // step` steps before it ends: one
            # count of bounds a step apart from the first start gives both ends
            k = width // step
            series = np.repeat(np.arange(n, dtype=np.int64) * (m + k + 1), np.diff(offsets))
            both = _counted_bounds(t, series, firsts, int(starts[0]), step, m + k)
            return both[:, :m], both[:, k:]
        series = np.repeat(np.arange(n, dtype=np.int64) * (m + 1), np.diff(offsets))
        lo = _counted_bounds(t, series, firsts, int(starts[0]), step, m)
        return lo, _counted_bounds(t, series, firsts, int(ends[0]), step, m)
    base = min(int(t.min()), int(starts.min())) if len(t) else int(starts.min())
    span = max(int(t.max()) if len(t) else base, int(ends.max())) - base + 1
    if n * span >= 2**62:  # a range of centuries over many series: one search per series
        pairs = list(itertools.pairwise(offsets.tolist()))
        lo = np.stack([np.searchsorted(t[a:b], starts, side="right") + a for a, b in pairs])
        hi = np.stack([np.searchsorted(t[a:b], ends, side="right") + a for a, b in pairs])
        return lo, hi
    row = np.arange(n, dtype=np.int64) * span
    key = np.repeat(row, np.diff(offsets)) + (t - base)
    lo = np.searchsorted(key, row[:, None] + (starts - base)[None, :], side="right")
    hi = np.searchsorted(key, row[:, None] + (ends - base)[None, :], side="right")
    return lo, hi


def _evenly_spaced(starts: Times, ends: Times) -> bool:
    """Whether the windows end a fixed step apart (> 0) and all span the same time."""
    step = ends[1:] - ends[:-1]
    width = ends - starts
    return bool(
        (not len(step) or (step[0] > 0 and (step == step[0]).all())) and (width == width[0]).all()
    )


def _counted_bounds(t: Ints, series: Ints, firsts: Ints, first: int, step: int, m: int) -> Ints:
    """For each series k and i < m, the index in `t` past the samples of series k at or
    before `first + i * step`: its first index and how many of its samples come by then.

    A sample at t comes by bound i when i >= ceil((t - first) / step): how many do is a
    running sum, over i, of how many samples have each such least i (one count of the
    samples and one running sum over the bounds, where a search was a binary search
    per series and bound)."""
    least = np.clip(-((first - t) // step), 0, m)  # m: after every bound
    counts = np.bincount(series + least, minlength=len(firsts) * (m + 1))
    by_bound = counts.reshape(len(firsts), m + 1)[:, :m]
    return np.cumsum(by_bound, axis=1) + firsts


def _extrapolated_chunk(
    matrix: Matrix, k0: int, k1: int, counter: bool, rate: bool
) -> list[Series]:
    """Series k0 to k1 of the matrix, each step's window an index range in its arrays."""
    offsets = matrix.offsets[k0 : k1 + 1]
    a0, a1 = int(offsets[0]), int(offsets[-1])
    if a1 == a0:
        return []
    t, v = matrix.t_ms[a0:a1], matrix.values[a0:a1]
    offsets = offsets - a0
    starts = matrix.ends - matrix.range_ms
    lo, hi = window_bounds(t, offsets, starts, matrix.ends)
    running = None
    if counter:  # a sample below the one before it: the counter reset, add what it had
        correction = np.concatenate(([0.0], np.where(v[1:] < v[:-1], v[:-1], 0.0)))
        firsts = offsets[:-1]
        correction[firsts[firsts < len(v)]] = 0.0  # a series' first follows another series'
        running = np.cumsum(correction)
    values, ok = _extrapolated_steps(
        t, v, running, starts[None, :], matrix.ends[None, :], lo, hi, rate
    )
    return [
        Series(without_name(matrix.labels[k0 + k]), values[k], ok[k])
        for k in np.flatnonzero(ok.any(axis=1))
    ]
