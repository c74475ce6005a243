"""The hourly rollups answer as the spans do, on every engine: sums exact, percentiles in
bound."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from tests.datagen import MINUTE_NS, Dataset, generate
from tests.store.conftest import THE_DUCKDB_ENGINE, open_store
from watchkeeper.errors import ValidationError
from watchkeeper.store import Group, SpanFilter, Summary
from watchkeeper.store._arrow import spans_table
from watchkeeper.store._duckdb_schema import migrate
from watchkeeper.store._rollup import GAMMA, MAIN, REL_ERROR, TOTALS, USERS, insert_sql
from watchkeeper.store._rollup_query import snapped_bounds
from watchkeeper.store._sql import SqlStore
from watchkeeper.store.duckdb import DuckDBStore

#: Why some of these store tests run on DuckDB only (tests/store/conftest.py): ClickHouse's
#: own migrations are tested in test_clickhouse.py.
DUCKDB_ONLY = {
    name: THE_DUCKDB_ENGINE
    for name in (
        "test_a_version_2_file_gets_its_rollup_backfilled",
        "test_a_file_gets_its_later_rollups_backfilled",
        "test_a_version_6_file_gets_last_ns_as_the_latest_end",
    )
}
Stores = tuple[SqlStore, SqlStore]

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def long() -> Dataset:
    """700 traces of project "roll", one every 4 minutes: about 47 hours."""
    return generate("roll", 700, spacing_ns=4 * MINUTE_NS)


def _filled(engine: str, data: Dataset, **kwargs: object) -> SqlStore:
    store = open_store(engine, **kwargs)
    for batch in data.batches(97):
        store.write(batch)
    store.write(generate("other", 200, seed=3, spacing_ns=10 * MINUTE_NS).batch())
    return store


@pytest.fixture(scope="module")
def stores(engine: str, long: Dataset) -> Iterator[Stores]:
    """(rollup store whose partial rows are merged every 3 writes, spans-only store)."""
    rolled = _filled(engine, long, compact_every=3)
    raw = _filled(engine, long, use_rollup=False)
    yield rolled, raw
    rolled.close()
    raw.close()


def _range(data: Dataset) -> SpanFilter:
    """Mid-hour edges on both sides (the data starts 800 s into an hour)."""
    first = min(s.start_ns for s in data.spans)
    last = max(s.start_ns for s in data.spans)
    return SpanFilter("roll", start_ns=first + 17 * MINUTE_NS, end_ns=last - 23 * MINUTE_NS)


def same(got: Summary, want: Summary) -> None:
    """Counts, sums, max and first/last exact; percentiles within the documented bound."""
    exact = ("count", "success", "errors", "timeouts", "fallbacks", "rejected", "input_tokens",
             "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
             "missing_price", "first_ns", "last_ns", "max_ms")  # fmt: skip
    assert {k: getattr(got, k) for k in exact} == {k: getattr(want, k) for k in exact}
    assert got.cost_usd == pytest.approx(want.cost_usd)
    assert got.avg_ms == pytest.approx(want.avg_ms)
    for q in ("p50_ms", "p90_ms", "p95_ms", "p99_ms"):
        g, w = getattr(got, q), getattr(want, q)
        assert (g is None) == (w is None)
        if w is not None:
            assert abs(g - w) <= REL_ERROR * w + 1e-9, (q, g, w)


def same_groups(got: list[Group], want: list[Group]) -> None:
    """The same keys in the same order, each summary as `same` says."""
    assert want and [g.key for g in got] == [g.key for g in want]
    for g, w in zip(got, want, strict=True):
        same(g.summary, w.summary)


FILTERS: list[dict[str, object]] = [
    {},
    {"scope": "requests"},
    {"scope": "llm"},
    {"services": ("chat-api",)},
    {"environments": ("staging",), "outcomes": ("success", "error")},
    {"models": ("gpt-4o",)},
    {"providers": ("anthropic",), "operations": ("llm",)},
    {"models": ("nobody",)},
]


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", FILTERS)
def test_summary(stores: Stores, long: Dataset, kwargs: dict[str, object]) -> None:
    rolled, raw = stores
    f = replace(_range(long), **kwargs)  # type: ignore[arg-type]
    same(rolled.summary(f), raw.summary(f))
    lean = rolled.summary(f, percentiles=False)  # sums straight from the rollup rows
    assert lean.p50_ms is None
    same(lean, raw.summary(f, percentiles=False))


def test_the_rollup_answers_long_ranges_only(stores: Stores, long: Dataset) -> None:
    rolled, raw = stores
    f = _range(long)
    quantiles = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
    got, want = rolled.summary(f), raw.summary(f)
    assert any(getattr(got, q) != getattr(want, q) for q in quantiles)  # approximate: rolled up
    for short in (
        replace(f, end_ns=f.start_ns + 24 * HOUR_NS),  # a day, not more
        replace(f, start_ns=None),  # open
        replace(f, user_id="user-3"),  # not a rollup column
        replace(f, routes=("/v1/chat",)),
        replace(f, min_duration_ms=100.0),
    ):
        assert rolled.summary(short) == raw.summary(short)  # exact, from spans
    assert rolled.summary(f, last_n=30) == raw.summary(f, last_n=30)


@pytest.mark.parametrize("by", ["model", "service", "outcome", "provider", "environment"])
@pytest.mark.parametrize("order", ["count", "cost", "errors"])
def test_breakdown(stores: Stores, long: Dataset, by: str, order: str) -> None:
    rolled, raw = stores
    f = _range(long)
    got = rolled.breakdown(f, by, limit=3, order=order)  # type: ignore[arg-type]
    want = raw.breakdown(f, by, limit=3, order=order)  # type: ignore[arg-type]
    assert [g.key for g in got] == [g.key for g in want]
    for g, w in zip(got, want, strict=True):
        same(g.summary, w.summary)


def test_breakdown_by_p95_and_by_other_dimensions(stores: Stores, long: Dataset) -> None:
    rolled, raw = stores
    f = replace(_range(long), scope="llm")
    got = {g.key: g.summary for g in rolled.breakdown(f, "model", order="p95")}
    want = {g.key: g.summary for g in raw.breakdown(f, "model", order="p95")}
    assert set(got) == set(want)
    for key, summary in got.items():
        same(summary, want[key])
    for by in ("user", "route", "feature"):  # from spans: exact, equal
        assert rolled.breakdown(f, by, limit=5) == raw.breakdown(f, by, limit=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        rolled.breakdown(f, "model", order="loudest")
    with pytest.raises(ValidationError):
        rolled.breakdown(f, "model", limit=0)


USER_FILTERS: list[dict[str, object]] = [
    {},
    {"scope": "llm"},
    {"scope": "requests", "services": ("chat-api",)},
    {"outcomes": ("error", "timeout"), "environments": ("prod",)},
]


@pytest.mark.parametrize("kwargs", USER_FILTERS)
@pytest.mark.parametrize("order", ["count", "cost", "errors"])
def test_user_breakdown_without_percentiles_reads_the_user_rollup(
    stores: Stores, long: Dataset, kwargs: dict[str, object], order: str
) -> None:
    rolled, raw = stores
    f = replace(_range(long), **kwargs)  # type: ignore[arg-type]
    assert rolled._rollup_for(f, "user", percentiles=False) is USERS
    got = rolled.breakdown(f, "user", limit=4, order=order, percentiles=False)
    want = raw.breakdown(f, "user", limit=4, order=order, percentiles=False)
    same_groups(got, want)


def test_user_breakdowns_the_user_rollup_cannot_answer_read_spans(
    stores: Stores, long: Dataset
) -> None:
    rolled, raw = stores
    f = _range(long)
    for other in (
        replace(f, models=("gpt-4o",)),  # not a user_rollup column
        replace(f, providers=("anthropic",)),
        replace(f, end_ns=f.start_ns + 24 * HOUR_NS),  # a day: the exact path
    ):
        assert rolled._rollup_for(other, "user", percentiles=False) is None
        assert rolled.breakdown(other, "user", percentiles=False) == raw.breakdown(
            other, "user", percentiles=False
        )
    assert rolled._rollup_for(f, "user", percentiles=True) is None  # no latency buckets


@pytest.mark.parametrize("by", ["model", "feature", "provider", "service"])
@pytest.mark.parametrize(
    "kwargs", [{}, {"scope": "llm"}, {"features": ("answer",)}, {"models": ("gpt-4o",)}]
)
def test_breakdowns_without_percentiles_read_the_totals_rollup(
    stores: Stores, long: Dataset, by: str, kwargs: dict[str, object]
) -> None:
    rolled, raw = stores
    f = replace(_range(long), **kwargs)  # type: ignore[arg-type]
    assert rolled._rollup_for(f, by, percentiles=False) is TOTALS
    assert rolled._rollup_for(f, None, percentiles=False) is TOTALS
    got = rolled.breakdown(f, by, limit=3, order="cost", percentiles=False)  # type: ignore[arg-type]
    want = raw.breakdown(f, by, limit=3, order="cost", percentiles=False)  # type: ignore[arg-type]
    same_groups(got, want)
    same(rolled.summary(f, percentiles=False), raw.summary(f, percentiles=False))
    # percentiles come from the table with latency buckets, or (by feature) from spans
    want_table = None if by == "feature" or kwargs.get("features") else MAIN
    assert rolled._rollup_for(f, by, percentiles=True) is want_table


@pytest.mark.parametrize(("step_s", "by"), [(3600, None), (7200, None), (3600, "model")])
def test_timeseries(stores: Stores, long: Dataset, step_s: int, by: str | None) -> None:
    rolled, raw = stores
    f = _range(long)
    got = rolled.timeseries(f, step_s, by, limit=2)  # type: ignore[arg-type]
    want = raw.timeseries(f, step_s, by, limit=2)  # type: ignore[arg-type]
    assert [(p.bucket_ns, p.key) for p in got] == [(p.bucket_ns, p.key) for p in want]
    for g, w in zip(got, want, strict=True):
        same(g.summary, w.summary)
    odd = rolled.timeseries(f, 5400)  # buckets that are not whole hours: from spans
    assert odd == raw.timeseries(f, 5400)


#: The overview page's latency bands (ms): each snaps to a different bucket edge.
BANDS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def heatmaps_agree(rolled: SqlStore, raw: SqlStore, f: SpanFilter, step_s: int) -> None:
    """`rolled` answers the heatmap from a rollup: its bounds are the bucket edges nearest
    BANDS, and its counts exactly what the spans count under those edges."""
    got = rolled.heatmap(f, step_s, BANDS)
    edges = snapped_bounds(BANDS)
    assert edges is not None and got.bounds_ms == [GAMMA**k for k in edges]
    assert got.bounds_ms != list(BANDS)
    for asked, snapped in zip(BANDS, got.bounds_ms, strict=True):
        assert abs(snapped - asked) <= REL_ERROR * asked
    want = raw.heatmap(f, step_s, got.bounds_ms)
    assert got.bucket_starts_ns == want.bucket_starts_ns and sum(map(sum, got.counts)) > 0
    assert got.counts == want.counts


@pytest.mark.parametrize("kwargs", [{}, {"scope": "requests"}, {"models": ("gpt-4o",)}])
def test_heatmap(stores: Stores, long: Dataset, kwargs: dict[str, object]) -> None:
    rolled, raw = stores
    f = replace(_range(long), **kwargs)  # type: ignore[arg-type]
    heatmaps_agree(rolled, raw, f, 3600)
    for step_s, bounds, exact in (
        (5400, BANDS, f),  # buckets that are not whole hours
        (3600, (0.5, *BANDS), f),  # a bound under 1 ms
        (3600, (960, 1000), f),  # two bounds on one bucket edge
        (3600, BANDS, replace(f, end_ns=f.start_ns + 24 * HOUR_NS)),  # a day, not more
        (3600, BANDS, replace(f, user_id="user-3")),  # not a rollup column
    ):
        got = rolled.heatmap(exact, step_s, bounds)
        assert got.bounds_ms == list(bounds) and got == raw.heatmap(exact, step_s, bounds)


@pytest.mark.slow
@pytest.mark.parametrize("project", ["roll", None])
def test_retention_keeps_the_rollup_right(engine: str, long: Dataset, project: str | None) -> None:
    rolled, raw = _filled(engine, long), _filled(engine, long, use_rollup=False)
    cut = min(s.start_ns for s in long.spans) + 7 * HOUR_NS + 11 * MINUTE_NS  # mid-hour
    assert rolled.delete_before(project, cut) == raw.delete_before(project, cut)
    f = _range(long)
    same(rolled.summary(f), raw.summary(f))
    assert rolled.summary(f).first_ns == min(s.start_ns for s in long.spans if s.start_ns >= cut)
    f = replace(f, start_ns=cut - 3 * HOUR_NS)  # covers the cut hour from the rollup
    same(rolled.summary(f), raw.summary(f))
    got = rolled.breakdown(f, "user", percentiles=False)
    for g, w in zip(got, raw.breakdown(f, "user", percentiles=False), strict=True):
        assert g.key == w.key
        same(g.summary, w.summary)
    aligned = cut // HOUR_NS * HOUR_NS + 2 * HOUR_NS
    rolled.delete_before(project, aligned)
    raw.delete_before(project, aligned)
    same(rolled.summary(f), raw.summary(f))
    rolled.close()
    raw.close()


def _file_at(tmp_path: Path, version: int, data: Dataset) -> Path:
    """A data file of an older schema `version` holding the spans of `data`."""
    path = tmp_path / f"v{version}.duckdb"
    con = duckdb.connect(str(path))
    assert migrate(con, target=version) == version
    con.register("old_rows", spans_table(data.spans))
    con.execute("INSERT INTO spans SELECT * FROM old_rows")
    con.close()
    return path


def test_a_version_2_file_gets_its_rollup_backfilled(tmp_path: Path, long: Dataset) -> None:
    path = _file_at(tmp_path, 2, long)  # the layout before the rollup
    rolled, raw = DuckDBStore(path), DuckDBStore(None, use_rollup=False)
    raw.write(long.batch())
    f = _range(long)
    same(rolled.summary(f), raw.summary(f))
    assert rolled.write(long.batch()) == 0  # nothing rolled up twice
    same(rolled.summary(f), raw.summary(f))
    rolled.close()
    raw.close()


@pytest.mark.parametrize(
    ("version", "by", "limit"),
    [(3, "user", 5), (4, "feature", 20)],  # before the per-user, the bucket-less rollup
)
@pytest.mark.slow
def test_a_file_gets_its_later_rollups_backfilled(
    tmp_path: Path, long: Dataset, version: int, by: str, limit: int
) -> None:
    rolled = DuckDBStore(_file_at(tmp_path, version, long))
    raw = DuckDBStore(None, use_rollup=False)
    raw.write(long.batch())
    f = _range(long)
    got = rolled.breakdown(f, by, limit=limit, order="cost", percentiles=False)  # type: ignore[arg-type]
    want = raw.breakdown(f, by, limit=limit, order="cost", percentiles=False)  # type: ignore[arg-type]
    same_groups(got, want)
    rolled.close()
    raw.close()


def test_a_version_6_file_gets_last_ns_as_the_latest_end(tmp_path: Path, long: Dataset) -> None:
    """Rollups written before migration 7 held the latest start as last_ns."""
    path = _file_at(tmp_path, 6, long)
    con = duckdb.connect(str(path))
    for table in (MAIN, USERS, TOTALS):
        new = insert_sql("spans", table=table)
        old = new.replace("max(start_ns + duration_ns) AS last_ns", "max(start_ns) AS last_ns")
        assert old != new
        con.execute(old)  # the rollup as version 6 wrote it
    con.close()
    rolled, raw = DuckDBStore(path), DuckDBStore(None, use_rollup=False)
    raw.write(long.batch())
    f = _range(long)
    assert f.start_ns is not None and f.end_ns is not None
    f = replace(f, end_ns=f.end_ns // HOUR_NS * HOUR_NS)  # the last spans from rollup rows
    inside = [s for s in long.spans if f.start_ns <= s.start_ns < f.end_ns]
    got = rolled.summary(f, percentiles=False)
    assert got.last_ns == max(s.start_ns + s.duration_ns for s in inside)
    assert got.last_ns > max(s.start_ns for s in inside)
    same(got, raw.summary(f, percentiles=False))
    same(rolled.summary(f), raw.summary(f))
    users = rolled.breakdown(f, "user", percentiles=False)
    same_groups(users, raw.breakdown(f, "user", percentiles=False))
    rolled.close()
    raw.close()
