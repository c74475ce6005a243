"""The per-minute rollup answers a busy day or less as the spans do: sums exact,
percentiles within the documented bound; a quiet range, or one past its horizon, still
comes from the spans, exactly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from tests.datagen import MINUTE_NS, Dataset, generate
from tests.store.conftest import THE_DUCKDB_ENGINE
from tests.store.test_rollup import (
    BANDS,
    FILTERS,
    Stores,
    _filled,
    heatmaps_agree,
    same,
    same_groups,
)
from watchkeeper.store import SpanFilter
from watchkeeper.store._arrow import spans_table
from watchkeeper.store._duckdb_schema import migrate
from watchkeeper.store._render import Query
from watchkeeper.store._rollup import MINUTE_KEEP_NS, MINUTES, TOTALS
from watchkeeper.store.duckdb import DuckDBStore

#: Why one of these store tests runs on DuckDB only (tests/store/conftest.py).
DUCKDB_ONLY = {"test_a_version_9_file_gets_its_recent_minutes_backfilled": THE_DUCKDB_ENGINE}

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def data() -> Dataset:
    """300 traces of project "roll", one every 2 minutes: 10 hours."""
    return generate("roll", 300, spacing_ns=2 * MINUTE_NS)


def _now(data: Dataset) -> int:
    """A wall clock an hour after the data's last span."""
    return max(s.start_ns for s in data.spans) + HOUR_NS


@pytest.fixture(scope="module")
def stores(engine: str, data: Dataset) -> Iterator[Stores]:
    """(store that reads any range of a day or less from the per-minute rollup, merging its
    partial rows every 3 writes; spans-only store)."""
    now = _now(data)
    minutes = _filled(engine, data, compact_every=3, minute_from_spans=0, clock=lambda: now)
    raw = _filled(engine, data, use_rollup=False)
    yield minutes, raw
    minutes.close()
    raw.close()


def _range(data: Dataset) -> SpanFilter:
    """Six hours with mid-minute edges on both sides."""
    first = min(s.start_ns for s in data.spans)
    return SpanFilter("roll", start_ns=first + 37 * MINUTE_NS + 17 * 10**9,
                      end_ns=first + 397 * MINUTE_NS + 41 * 10**9)  # fmt: skip


@pytest.mark.parametrize("kwargs", FILTERS)
def test_summary(stores: Stores, data: Dataset, kwargs: dict[str, object]) -> None:
    minutes, raw = stores
    f = replace(_range(data), **kwargs)  # type: ignore[arg-type]
    assert minutes._rollup_for(f, None, percentiles=True) is MINUTES
    same(minutes.summary(f), raw.summary(f))
    same(minutes.summary(f, percentiles=False), raw.summary(f, percentiles=False))


def test_percentiles_are_approximate_then(stores: Stores, data: Dataset) -> None:
    minutes, raw = stores
    got, want = minutes.summary(_range(data)), raw.summary(_range(data))
    quantiles = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
    assert any(getattr(got, q) != getattr(want, q) for q in quantiles)


@pytest.mark.parametrize("by", ["model", "service", "outcome", "provider"])
@pytest.mark.parametrize("order", ["count", "cost", "errors", "p95"])
def test_breakdown(stores: Stores, data: Dataset, by: str, order: str) -> None:
    minutes, raw = stores
    f = _range(data)
    limit = 20 if order == "p95" else 3  # approximate p95s may rank close keys differently
    got = minutes.breakdown(f, by, limit=limit, order=order)  # type: ignore[arg-type]
    want = raw.breakdown(f, by, limit=limit, order=order)  # type: ignore[arg-type]
    if order == "p95":
        got.sort(key=lambda g: str(g.key))
        want.sort(key=lambda g: str(g.key))
    same_groups(got, want)
    lean = minutes.breakdown(f, by, limit=3, order="count", percentiles=False)  # type: ignore[arg-type]
    same_groups(lean, raw.breakdown(f, by, limit=3, order="count", percentiles=False))  # type: ignore[arg-type]


@pytest.mark.parametrize(("step_s", "by"), [(60, None), (300, None), (600, "model")])
def test_timeseries(stores: Stores, data: Dataset, step_s: int, by: str | None) -> None:
    minutes, raw = stores
    f = _range(data)
    got = minutes.timeseries(f, step_s, by, limit=2)  # type: ignore[arg-type]
    want = raw.timeseries(f, step_s, by, limit=2)  # type: ignore[arg-type]
    assert [(p.bucket_ns, p.key) for p in got] == [(p.bucket_ns, p.key) for p in want]
    for g, w in zip(got, want, strict=True):
        same(g.summary, w.summary)
    assert minutes.timeseries(f, 90) == raw.timeseries(f, 90)  # not whole minutes: spans


def test_heatmap(stores: Stores, data: Dataset) -> None:
    minutes, raw = stores
    f = _range(data)
    heatmaps_agree(minutes, raw, f, 60)
    heatmaps_agree(minutes, raw, replace(f, scope="requests", services=("chat-api",)), 300)
    assert minutes.heatmap(f, 90, BANDS) == raw.heatmap(f, 90, BANDS)  # not whole minutes


def test_what_the_minutes_cannot_answer_comes_from_the_spans(stores: Stores, data: Dataset) -> None:
    minutes, raw = stores
    f = _range(data)
    for exact in (
        replace(f, start_ns=None),  # open
        replace(f, end_ns=f.start_ns + 2 * MINUTE_NS),  # two minutes or less
        replace(f, user_id="user-3"),  # not a rollup column
        replace(f, features=("search",)),
        replace(f, min_duration_ms=100.0),
    ):
        assert minutes._rollup_for(exact, None, percentiles=True) is None
        assert minutes.summary(exact) == raw.summary(exact)
    assert minutes.breakdown(f, "feature") == raw.breakdown(f, "feature")
    assert minutes.summary(f, last_n=30) == raw.summary(f, last_n=30)


def test_a_range_of_few_spans_stays_exact(engine: str, data: Dataset) -> None:
    """Below `minute_from_spans` spans in the range, the spans answer: exact percentiles."""
    f = _range(data)
    inside = sum(1 for s in data.spans if f.start_ns <= s.start_ns < f.end_ns)  # type: ignore[operator]
    now = _now(data)
    few = _filled(engine, data, minute_from_spans=inside + 2 * len(data.spans), clock=lambda: now)
    raw = _filled(engine, data, use_rollup=False)
    assert few._rollup_for(f, None, percentiles=True) is None
    assert few.summary(f) == raw.summary(f)
    many = _filled(engine, data, minute_from_spans=inside, clock=lambda: now)
    assert many._rollup_for(f, None, percentiles=True) is MINUTES
    for store in (few, raw, many):
        store.close()


def test_the_minutes_keep_their_horizon(engine: str, data: Dataset) -> None:
    """Past MINUTE_KEEP_NS the rows are dropped, and a range that starts there reads spans."""
    clock = [_now(data)]
    store = _filled(engine, data, compact_every=1, minute_from_spans=0, clock=lambda: clock[0])
    raw = _filled(engine, data, use_rollup=False)
    f = _range(data)
    assert store._rollup_for(f, None, percentiles=True) is MINUTES
    clock[0] += MINUTE_KEEP_NS - 5 * HOUR_NS  # the range's start is older than the horizon
    assert store._rollup_for(f, None, percentiles=True) is None
    assert store.summary(f) == raw.summary(f)
    clock[0] += 5 * HOUR_NS
    store.write(generate("roll", 1, seed=9, start_ns=clock[0]).batch())  # merges and prunes
    ((first, n),) = store._rows(Query(f"SELECT min(minute_ns), count(*) FROM {MINUTES.name}", {}))
    assert first >= clock[0] - MINUTE_KEEP_NS and n > 0
    store.close()
    raw.close()


@pytest.mark.parametrize("project", ["roll", None])
def test_retention_cuts_the_minutes_too(engine: str, data: Dataset, project: str | None) -> None:
    now = _now(data)
    minutes = _filled(engine, data, minute_from_spans=0, clock=lambda: now)
    raw = _filled(engine, data, use_rollup=False)
    f = _range(data)
    assert f.start_ns is not None
    cut = f.start_ns + 95 * MINUTE_NS + 13 * 10**9  # mid-minute, inside the range
    assert minutes.delete_before(project, cut) == raw.delete_before(project, cut)
    same(minutes.summary(f), raw.summary(f))
    assert minutes.summary(f).first_ns == raw.summary(f).first_ns
    same_groups(minutes.breakdown(f, "model"), raw.breakdown(f, "model"))
    minutes.close()
    raw.close()


def test_a_version_9_file_gets_its_recent_minutes_backfilled(tmp_path: Path) -> None:
    """Migration 10 rolls up the spans of the horizon (by the wall clock) it finds."""
    recent = generate("roll", 120, start_ns=time.time_ns() - 5 * HOUR_NS)
    old = generate("roll", 50, seed=2, start_ns=time.time_ns() - MINUTE_KEEP_NS - 9 * HOUR_NS)
    path = tmp_path / "v9.duckdb"
    con = duckdb.connect(str(path))
    assert migrate(con, target=9) == 9
    con.register("old_rows", spans_table([*recent.spans, *old.spans]))
    con.execute("INSERT INTO spans SELECT * FROM old_rows")
    con.close()
    store = DuckDBStore(path, minute_from_spans=0)
    raw = DuckDBStore(None, use_rollup=False)
    raw.write(recent.batch())
    first = min(s.start_ns for s in recent.spans)
    f = SpanFilter("roll", first + 7 * MINUTE_NS, first + 3 * HOUR_NS)
    assert store._rollup_for(f, None, percentiles=True) is MINUTES
    same(store.summary(f), raw.summary(f))
    rows = store._con.execute(f"SELECT min(minute_ns) FROM {MINUTES.name}").fetchone()
    assert rows is not None and rows[0] >= first // MINUTE_NS * MINUTE_NS  # old: not kept
    assert store._rollup_for(replace(f, end_ns=f.start_ns + 25 * HOUR_NS), None,
                             percentiles=False) is TOTALS  # fmt: skip
    store.close()
    raw.close()
