"""DuckDB and ClickHouse give the same answers on the same 100k spans (issue 11, item 3).

Counts, token sums, first and last times are equal; costs and averages equal up to float
rounding. Percentiles: exact on both where they read the spans; where both answer from their
rollups (ranges over a day: DuckDB's tables, ClickHouse's materialized views), within the
rollups' documented bound (`REL_ERROR`) of each other and of the exact answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from tests.datagen import BASE_NS, MINUTE_NS, Dataset, generate, scores_for
from tests.store.conftest import chdb_url
from tests.store.test_rollup import FILTERS, same, same_groups
from watchkeeper.store import DIMENSIONS, SpanFilter, Store
from watchkeeper.store._rollup import MAIN, TOTALS, USERS
from watchkeeper.store._sql import SqlStore
from watchkeeper.store.clickhouse import ClickHouseStore
from watchkeeper.store.duckdb import DuckDBStore

TRACES = 36_000  # ~100k spans, one trace a minute: 25 days
DAY_NS = 24 * 60 * MINUTE_NS
Pair = tuple[SqlStore, SqlStore]


@pytest.fixture(scope="module")
def data() -> Dataset:
    return generate("big", TRACES)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, data: Dataset) -> Iterator[Pair]:
    """(DuckDB, ClickHouse on chDB), each holding the same spans and scores."""
    tmp: Path = tmp_path_factory.mktemp("agree")
    duck = DuckDBStore(tmp / "spans.duckdb")
    ch = ClickHouseStore(chdb_url(tmp), database="agree")
    traces = sorted({s.trace_id for s in data.spans})[:500]
    for store in (duck, ch):
        for batch in data.batches(10_000):
            store.write(batch)
        store.write_scores(scores_for("big", traces))
    yield duck, ch
    duck.close()
    ch.close()


def _ranges(data: Dataset) -> dict[str, SpanFilter]:
    end = max(s.start_ns for s in data.spans) + 1
    return {
        "everything": SpanFilter("big"),
        "20 days, mid-hour edges": SpanFilter("big", BASE_NS + 17 * MINUTE_NS, end - 7 * DAY_NS),
        "one day": SpanFilter("big", BASE_NS + 3 * DAY_NS, BASE_NS + 4 * DAY_NS),
    }


@pytest.mark.slow
def test_the_data_is_there(engines: Pair, data: Dataset) -> None:
    duck, ch = engines
    assert len(data.spans) >= 100_000
    assert duck.count() == ch.count() == len(data.spans)


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", FILTERS)
def test_summaries(engines: Pair, data: Dataset, kwargs: dict[str, object]) -> None:
    duck, ch = engines
    for f in _ranges(data).values():
        f = replace(f, **kwargs)  # type: ignore[arg-type]
        same(duck.summary(f), ch.summary(f))
        same(duck.summary(f, percentiles=False), ch.summary(f, percentiles=False))
    same(
        duck.summary(SpanFilter("big", **kwargs), 500), ch.summary(SpanFilter("big", **kwargs), 500)
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory, data: Dataset) -> Iterator[Store]:
    """ClickHouse answering every query from the spans: the exact answers."""
    tmp: Path = tmp_path_factory.mktemp("exact")
    store = ClickHouseStore(chdb_url(tmp), database="agree_exact", use_rollup=False)
    for batch in data.batches(10_000):
        store.write(batch)
    yield store
    store.close()


@pytest.mark.slow
def test_both_answer_long_ranges_from_their_rollups(
    engines: Pair, exact: Store, data: Dataset
) -> None:
    """Over 20 days both engines read the same rollup table, and their answers agree with
    each other and with the spans'."""
    duck, ch = engines
    f = _ranges(data)["20 days, mid-hour edges"]
    for by, percentiles, table in (
        (None, True, MAIN),
        ("model", True, MAIN),
        ("service", False, TOTALS),
        ("feature", False, TOTALS),
        ("user", False, USERS),
    ):
        assert duck._rollup_for(f, by, percentiles=percentiles) is table
        assert ch._rollup_for(f, by, percentiles=percentiles) is table
        if by is None:
            same(ch.summary(f), duck.summary(f))
            same(ch.summary(f), exact.summary(f))
            continue
        for order in ("count", "cost", "errors"):
            want = exact.breakdown(f, by, 6, order, percentiles=percentiles)  # type: ignore[arg-type]
            same_groups(ch.breakdown(f, by, 6, order, percentiles=percentiles), want)  # type: ignore[arg-type]
            same_groups(duck.breakdown(f, by, 6, order, percentiles=percentiles), want)  # type: ignore[arg-type]
    series = ch.timeseries(f, 6 * 3600, "model", 3)
    assert [(p.bucket_ns, p.key) for p in series] == [
        (p.bucket_ns, p.key) for p in exact.timeseries(f, 6 * 3600, "model", 3)
    ]
    for got, want in zip(series, exact.timeseries(f, 6 * 3600, "model", 3), strict=True):
        same(got.summary, want.summary)


@pytest.mark.slow
@pytest.mark.parametrize("by", sorted(DIMENSIONS))
def test_breakdowns(engines: Pair, data: Dataset, by: str) -> None:
    duck, ch = engines
    for f in _ranges(data).values():
        for order in ("count", "cost", "errors"):
            for percentiles in (True, False):
                want = duck.breakdown(f, by, 7, order, percentiles=percentiles)  # type: ignore[arg-type]
                got = ch.breakdown(f, by, 7, order, percentiles=percentiles)  # type: ignore[arg-type]
                if want:
                    same_groups(got, want)
                else:
                    assert got == []


@pytest.mark.slow
@pytest.mark.parametrize("by", [None, "service", "model", "user"])
def test_series(engines: Pair, data: Dataset, by: str | None) -> None:
    duck, ch = engines
    for f in _ranges(data).values():
        for step in (3600, 6 * 3600, 86_400):
            want = duck.timeseries(f, step, by, 5)  # type: ignore[arg-type]
            got = ch.timeseries(f, step, by, 5)  # type: ignore[arg-type]
            assert [(p.bucket_ns, p.key) for p in got] == [(p.bucket_ns, p.key) for p in want]
            for g, w in zip(got, want, strict=True):
                same(g.summary, w.summary)


def _plain(rows: list[Any]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def _approx(rows: list[Any]) -> list[dict[str, Any]]:
    """The rows as dicts, floats compared up to rounding (sums in another order)."""
    return [
        {k: pytest.approx(v) if isinstance(v, float) else v for k, v in row.items()}
        for row in _plain(rows)
    ]


@pytest.mark.slow
def test_heatmaps_pages_traces_activity_and_scores(engines: Pair, data: Dataset) -> None:
    duck, ch = engines
    for f in _ranges(data).values():
        assert ch.heatmap(f, 3600, [100, 500, 2000]) == duck.heatmap(f, 3600, [100, 500, 2000])
        assert _plain(ch.sessions(f, 30)) == _approx(duck.sessions(f, 30))
        assert _plain(ch.users(f, 30)) == _approx(duck.users(f, 30))
        assert _plain(ch.scores_summary(f)) == _approx(duck.scores_summary(f))
        assert ch.scores(f, 50) == duck.scores(f, 50)
        for g in (f, replace(f, text="zebra"), replace(f, outcomes=("timeout",))):
            want, got = duck.search_spans(g, 100), ch.search_spans(g, 100)
            assert got.items == want.items and got.next_cursor == want.next_cursor
            assert want.items
    for span in data.spans[:: len(data.spans) // 40]:
        assert ch.trace("big", span.trace_id) == duck.trace("big", span.trace_id)
