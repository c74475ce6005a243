"""Closed time blocks compacted into per-series chunks: every read answers what it did
before (series in time order, staleness markers and NaNs kept), during the compaction's
steps, after a reopen, across retention, and with a late sample of a compacted block."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.model import Sample
from watchkeeper.store import _metric_chunks
from watchkeeper.store._metric_chunks import BLOCK_MS, GRACE_MS
from watchkeeper.store.metrics import Matcher, MetricsStore, SampleColumns

HOUR_MS = 3600 * 1000
START_MS = 1_765_000_000_000 // BLOCK_MS * BLOCK_MS + 17
Points = dict[str, list[tuple[int, float | None]]]


def _labels(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


def _read(store: MetricsStore, start_ms: int = 0, end_ms: int = 2**62) -> Points:
    """Every series' samples in the range, NaN as the string "nan" (so lists compare)."""
    out: Points = {}
    for s in store.select("p", [Matcher("__name__", "=~", ".+")], start_ms, end_ms):
        assert np.all(np.diff(s.t_ms) > 0), "a series' samples in time order"
        key = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[key] = [
            (int(t), None if stale else ("nan" if math.isnan(v) else float(v)))  # type: ignore[misc]
            for t, v, stale in zip(s.t_ms, s.values, s.stale, strict=True)
        ]
    return out


def _history(hours: int, series: int, every_ms: int = 60_000) -> list[list[Sample]]:
    """Rounds of one sample per series (in a shuffled order each round, as senders do), with
    a NaN value and a staleness marker now and then."""
    rng = random.Random(7)
    rounds = []
    for i in range(hours * HOUR_MS // every_ms):
        t = START_MS + i * every_ms
        batch = []
        for s in rng.sample(range(series), series):
            value: float | None = float(i * series + s)
            if (i + s) % 97 == 0:
                value = math.nan
            elif (i + s) % 89 == 0:
                value = None
            batch.append(Sample(_labels("m", s=str(s), even=str(s % 2 == 0)), t + s, value))
        rounds.append(batch)
    return rounds


def _chunked(store: MetricsStore) -> tuple[int, int]:
    """(samples in chunks, samples not yet compacted)."""
    with store._cursor() as cur:
        (chunks,) = cur.execute("SELECT coalesce(sum(n), 0) FROM metric_chunks").fetchone()
        (rows,) = cur.execute("SELECT count(*) FROM metric_samples").fetchone()
    return int(chunks), int(rows)


@pytest.fixture
def clock() -> list[float]:
    return [START_MS / 1000]


def test_reads_answer_the_same_before_during_and_after_compaction(
    tmp_path: Path, clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_metric_chunks, "STEP_SAMPLES", 500)  # many steps per block
    store = MetricsStore(tmp_path / "m.duckdb", clock=lambda: clock[0])
    plain = MetricsStore(clock=lambda: 0.0)  # its clock never lets a compaction start
    for batch in _history(7, 20):
        for s in (store, plain):
            assert s.write("p", batch).written == len(batch)
    want = _read(plain)
    assert _chunked(store) == (0, 7 * 60 * 20)  # no maintenance yet: the clock stood still
    steps, done, left = 0, -1, 0
    while True:
        clock[0] += 10.0  # a step is due at each turn
        store.maintain()
        before, (done, left) = done, _chunked(store)
        assert done + left == 7 * 60 * 20
        assert _read(store) == want  # every step, some series of a block moved, some not
        middle = (START_MS + 2 * HOUR_MS, START_MS + 5 * HOUR_MS + 30_000)
        assert _read(store, *middle) == _read(plain, *middle)
        if done == before:
            break
        steps += 1
    # 7 h of data: the blocks ended 3 h (4 h) before the newest sample are compacted
    assert done == 4 * 60 * 20 and left == 3 * 60 * 20 and steps > 4
    store.close()
    reopened = MetricsStore(tmp_path / "m.duckdb", clock=lambda: clock[0])
    assert _read(reopened) == want
    later = _history(8, 20)[-60:]  # the next hour, written after the reopen
    for s in (reopened, plain):
        for batch in later:
            assert s.write("p", batch).written == len(batch)
    assert _read(reopened) == _read(plain)
    reopened.close()


def test_a_late_sample_of_a_compacted_block_stays_in_order(clock: list[float]) -> None:
    store = MetricsStore(clock=lambda: clock[0])
    quiet, busy = _labels("m", s="quiet"), _labels("m", s="busy")
    store.write("p", [Sample(quiet, START_MS, 1.0), Sample(quiet, START_MS + 60_000, 2.0)])
    store.write("p", [Sample(busy, START_MS + BLOCK_MS + GRACE_MS + 1, 5.0)])
    clock[0] += 60
    store.maintain()
    assert _chunked(store) == (2, 1)
    # later than the quiet series' last, yet inside the block already compacted
    assert store.write("p", [Sample(quiet, START_MS + 120_000, 3.0)]).written == 1
    assert store.write("p", [Sample(quiet, START_MS + 30_000, 9.0)]).rejected == {"out_of_order": 1}
    want = [(START_MS, 1.0), (START_MS + 60_000, 2.0), (START_MS + 120_000, 3.0)]
    assert _read(store)["__name__=m,s=quiet"] == want
    clock[0] += 60
    store.maintain()
    assert _chunked(store) == (3, 1)  # the late sample: a chunk of its own
    assert _read(store)["__name__=m,s=quiet"] == want
    assert _read(store, START_MS + 60_000, START_MS + 60_000) == {"__name__=m,s=quiet": want[1:2]}


def test_retention_cuts_a_chunk_across_the_cutoff(clock: list[float]) -> None:
    store = MetricsStore(clock=lambda: clock[0])
    plain = MetricsStore(clock=lambda: 0.0)
    for batch in _history(6, 5):
        for s in (store, plain):
            s.write("p", batch)
    for _ in range(5):
        clock[0] += 5
        store.maintain()
    assert _chunked(store)[0] == 2 * 120 * 5  # two blocks of three
    cutoff = START_MS + HOUR_MS + 30 * 60_000 + 2  # inside the compacted block
    assert store.delete_before(cutoff) == plain.delete_before(cutoff)
    assert _read(store) == _read(plain)
    assert min(t for points in _read(store).values() for t, _ in points) >= cutoff
    # the first block's last half hour but two samples, and the second block
    assert _chunked(store)[0] == 30 * 5 - 2 + 120 * 5


def test_while_idle_the_steps_follow_each_other_until_none_is_due(
    clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_metric_chunks, "STEP_SAMPLES", 500)
    store = MetricsStore(clock=lambda: clock[0])
    for batch in _history(7, 20):
        store.write("p", batch)
    assert store.compaction_due()
    store.maintain(idle=True)  # the clock stood still since the writes: nothing is due yet
    assert _chunked(store)[0] == 0
    clock[0] += 10
    for _ in range(40):  # the clock still: only being idle lets a step follow the last
        store.maintain(idle=True)
    assert _chunked(store) == (4 * 60 * 20, 3 * 60 * 20) and not store.compaction_due()
    assert store.compact() == 0  # nothing left that is over


def test_a_read_of_more_chunks_than_the_engine_memory_holds(tmp_path: Path) -> None:
    """12 h of 4,000 series in chunks (35 MB of arrays) read under a 24 MB engine limit, in
    (series, time) order: the chunk rows come from the file block by block and are put in
    order outside DuckDB (an ORDER BY there held them all in its memory: Out of Memory)."""
    t0 = START_MS // BLOCK_MS * BLOCK_MS
    store = MetricsStore(tmp_path / "m.duckdb", memory_limit_mb=24)
    series = [_labels("m", s=str(i)) for i in range(4000)]
    index = np.arange(len(series), dtype=np.int64)
    for hour in range(12):
        minutes = np.arange(hour * 60, hour * 60 + 60)
        store.write_columns(
            "p",
            SampleColumns(
                series,
                np.tile(index, 60),
                np.repeat(t0 + minutes * 60_000, len(series)),
                np.tile(index * 1000.0, 60) + np.repeat(minutes, len(series)),
                np.zeros(len(series) * 60, np.bool_),
                np.zeros(len(series) * 60, np.bool_),
            ),
        )
    assert store.compact() > 0 and _chunked(store)[0] > 2_000_000
    block = store.select_block("p", [Matcher("__name__", "=", "m")], t0, t0 + 12 * HOUR_MS)
    assert len(block.t_ms) == 12 * 60 * 4000
    for k in (0, 1777, 3999):  # each series whole, in time order, its own values
        lo, hi = block.offsets[k], block.offsets[k + 1]
        number = int(block.labels[k]["s"])
        assert (block.t_ms[lo:hi] == t0 + np.arange(720) * 60_000).all()
        assert (block.values[lo:hi] == number * 1000.0 + np.arange(720)).all()
