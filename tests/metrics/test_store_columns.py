"""The metric store's writes as columns: every sample decided as the documented one-by-one
rules decide it (out-of-order, duplicate, duplicate_timestamp, deltas made cumulative,
staleness markers, NaN), a series' id kept from request to request, the series limit
dropping exactly the new series of a request, and each series' last sample (flushed to the
file once a second) recovered after a crash."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np

from watchkeeper.model import Labels, Sample
from watchkeeper.store.metrics import Matcher, MetricsStore, SampleColumns, series_id

Last = dict[Labels, tuple[int, float | None]]


def _rules(
    samples: list[Sample], last: Last
) -> tuple[list[tuple[Labels, int, float | None]], Counter[str]]:
    """The rules of docs/metrics.md applied one sample at a time (the test's oracle)."""
    kept, rejected = [], Counter[str]()
    for s in samples:
        prev, value = last.get(s.labels), s.value
        if prev is not None:
            if s.t_ms < prev[0]:
                rejected["out_of_order"] += 1
                continue
            if s.delta and value is not None and prev[1] is not None:
                value = prev[1] + value
            if s.t_ms == prev[0]:
                same = (prev[1] is None and value is None) or (
                    prev[1] is not None
                    and value is not None
                    and (prev[1] == value or (math.isnan(prev[1]) and math.isnan(value)))
                )
                rejected["duplicate" if same else "duplicate_timestamp"] += 1
                continue
        last[s.labels] = (s.t_ms, value)
        kept.append((s.labels, s.t_ms, value))
    return kept, rejected


def _stored(store: MetricsStore) -> list[tuple[Labels, int, float | None]]:
    out = []
    for s in store.select("p", [Matcher("__name__", "=~", ".+")], -(10**12), 10**12):
        labels = tuple(sorted(s.labels.items()))
        for t, v, stale in zip(s.t_ms, s.values, s.stale, strict=True):
            out.append((labels, int(t), None if stale else float(v)))
    return out


def _key(row: tuple[Labels, int, float | None]) -> tuple[Labels, int, str]:
    return row[0], row[1], repr(row[2])


def test_columns_decide_every_sample_as_the_rules_one_by_one() -> None:
    rng = random.Random(13)
    series = [(("__name__", f"m{i % 3}"), ("k", str(i))) for i in range(6)]
    store, last, want = MetricsStore(), Last(), []
    for _ in range(40):  # requests: repeats of a series, deltas, NaN, inf, markers
        samples = [
            Sample(
                rng.choice(series),
                rng.randrange(0, 12) * 1000,
                rng.choice([None, math.nan, math.inf, -math.inf, 0.0, 1.0, 2.5]),
                rng.random() < 0.3,
            )
            for _ in range(rng.randrange(0, 15))
        ]
        kept, rejected = _rules(samples, last)
        result = store.write_columns("p", SampleColumns.from_samples(samples))
        assert (result.written, dict(result.rejected)) == (len(kept), dict(rejected))
        want += kept
    assert sorted(map(_key, _stored(store))) == sorted(map(_key, want))


def test_a_series_seen_again_in_a_later_request_keeps_its_id(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.duckdb")
    up = (("__name__", "up"), ("job", "a"))
    other = (("__name__", "up"), ("job", "b"))
    first = store.write("p", [Sample(up, 1000, 1.0)])
    again = store.write("p", [Sample(other, 2000, 1.0), Sample(up, 2000, 2.0)])
    assert (first.new_series, again.new_series, again.written) == (1, 1, 2)
    assert store.stats() == {"p": 2}
    store.close()
    with duckdb.connect(str(tmp_path / "metrics.duckdb")) as con:
        rows = con.execute(
            "SELECT series_id, count(*) FROM metric_samples JOIN metric_series USING (series_no) "
            "GROUP BY 1"
        ).fetchall()
        last = con.execute("SELECT series_id, last_ms FROM metric_series").fetchall()
    assert dict(rows) == {series_id("p", up): 2, series_id("p", other): 1}
    assert dict(last) == {series_id("p", up): 2000, series_id("p", other): 2000}


def test_a_request_past_the_series_limit_drops_exactly_its_new_series() -> None:
    store = MetricsStore(max_series_per_project=10)
    known = [(("__name__", "g"), ("i", str(i))) for i in range(4)]
    store.write("p", [Sample(s, 1000, 1.0) for s in known])
    new = [(("__name__", "g"), ("i", f"new{i}")) for i in range(20)]
    # 20 new series (two samples each) before and after the known ones: 6 fit
    samples = [Sample(s, t, 1.0) for t in (2000, 3000) for s in new[:10] + known + new[10:]]
    result = store.write_columns("p", SampleColumns.from_samples(samples))
    assert result.new_series == 6 and result.rejected == Counter(series_limit=28)
    assert result.written == 2 * (6 + 4)
    kept = {labels for labels, _, _ in _stored(store)}
    assert kept == set(known) | set(new[:6])
    assert "reached its limit of 10 series" in result.warning
    assert store.stats() == {"p": 10}


def test_columns_keep_nan_and_staleness_markers_apart() -> None:
    cols = SampleColumns(
        series=[(("__name__", "x"),)],
        index=np.zeros(3, np.int64),
        t_ms=np.array([1, 2, 3], np.int64),
        values=np.array([math.nan, 7.0, 1.0]),
        stale=np.array([False, True, False]),
        delta=np.zeros(3, np.bool_),
    )
    store = MetricsStore()
    assert store.write_columns("p", cols).written == 3
    assert [repr(v) for _, _, v in _stored(store)] == ["nan", "None", "1.0"]


_CRASH = """
import os, sys
from pathlib import Path
from watchkeeper.model import Sample
from watchkeeper.store.metrics import MetricsStore

store = MetricsStore(Path(sys.argv[1]), clock=lambda: 1000.0)  # a frozen clock: no flush
up = (("__name__", "up"), ("job", "a"))
store.write("p", [Sample(up, 1000, 1.0)])
store.write("p", [Sample(up, 2000, 2.0), Sample((("__name__", "down"),), 2000, None)])
os._exit(0)  # a crash: no close, no flush of the series' last samples
"""


def test_a_crash_before_the_last_samples_are_flushed_loses_none(tmp_path: Path) -> None:
    path = tmp_path / "metrics.duckdb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", _CRASH, str(path)], check=True, env=env)
    with duckdb.connect(str(path)) as con:  # the file's copy is behind: the writer's was not
        assert con.execute("SELECT max(last_ms) FROM metric_series").fetchone() == (None,)
    store = MetricsStore(path)
    up = (("__name__", "up"), ("job", "a"))
    again = store.write("p", [Sample(up, 2000, 2.0), Sample(up, 1500, 9.0)])
    assert (again.written, dict(again.rejected)) == (0, {"duplicate": 1, "out_of_order": 1})
    assert store.write("p", [Sample((("__name__", "down"),), 2000, None)]).written == 0
    assert store.series("p", [[Matcher("__name__", "=~", ".+")]], 1900, 2100) == [
        {"__name__": "down"},
        {"__name__": "up", "job": "a"},
    ]
    store.close()
    with duckdb.connect(str(path)) as con:
        lasts = con.execute("SELECT metric, last_ms, last_value FROM metric_series ORDER BY 1")
        assert lasts.fetchall() == [("down", 2000, None), ("up", 2000, 2.0)]
        assert con.execute("SELECT pending_from_ms FROM metric_writer").fetchall() == [(None,)]


def test_requests_written_together_store_what_they_store_one_by_one() -> None:
    rng = random.Random(7)
    series = [(("__name__", "m"), ("k", str(i))) for i in range(4)]
    requests = [
        [
            Sample(rng.choice(series), rng.randrange(0, 6) * 1000, float(rng.randrange(3)), d)
            for d in (False, True, False)
        ]
        for _ in range(6)
    ]
    apart, together = MetricsStore(), MetricsStore()
    results = [apart.write_columns("p", SampleColumns.from_samples(r)) for r in requests]
    parts = [SampleColumns.from_samples(r) for r in requests]
    joined = together.write_columns("p", SampleColumns.concat(parts))
    assert joined.written == sum(r.written for r in results)
    assert joined.rejected == sum((r.rejected for r in results), Counter[str]())
    assert sorted(map(_key, _stored(together))) == sorted(map(_key, _stored(apart)))


def test_series_ids_stay_the_ones_files_hold() -> None:
    # Hashes of files written before (a series' id is its primary key): never to change.
    assert series_id("p", (("__name__", "up"), ("job", "a"))) == -4497894556988422568
    labels = (("__name__", "x_total"), ("k", "\u2603"), ("z", ""))
    assert series_id("pr\u00e9", labels) == 8284956553260143462
