"""The metric store: what it keeps and refuses as Prometheus's TSDB does, delta sums made
cumulative, the series limit, matchers in SQL, and a file reopened (replay stores nothing
twice)."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from watchkeeper.errors import ValidationError
from watchkeeper.model import Metadata, Sample
from watchkeeper.store import _duckdb_schema
from watchkeeper.store._metric_read import series_order
from watchkeeper.store._metrics_schema import MIGRATIONS
from watchkeeper.store.metrics import Matcher, MetricsStore, series_id


def _labels(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


def _values(store: MetricsStore, *matchers: Matcher, project: str = "p") -> dict[str, list]:
    out = {}
    for s in store.select(project, matchers, 0, 10**12):
        points = [
            (int(t), None if stale else float(v))
            for t, v, stale in zip(s.t_ms, s.values, s.stale, strict=True)
        ]
        out[",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))] = points
    return out


def test_out_of_order_and_duplicates_follow_prometheus() -> None:
    store = MetricsStore()
    up = _labels("up", job="a")
    result = store.write(
        "p",
        [
            Sample(up, 1000, 1.0),
            Sample(up, 2000, 2.0),
            Sample(up, 2000, 2.0),  # the same sample again: ignored
            Sample(up, 2000, 5.0),  # another value at the same time: refused
            Sample(up, 1500, 9.0),  # older than the last: refused
            Sample(up, 3000, math.nan),  # NaN is a value
            Sample(up, 4000, None),  # a staleness marker
        ],
    )
    assert result.written == 4
    assert dict(result.rejected) == {"duplicate": 1, "duplicate_timestamp": 1, "out_of_order": 1}
    (points,) = _values(store, Matcher("__name__", "=", "up")).values()
    assert points[:2] == [(1000, 1.0), (2000, 2.0)]
    assert points[2][0] == 3000 and math.isnan(points[2][1])
    assert points[3] == (4000, None)


def test_a_later_write_is_checked_against_what_is_stored() -> None:
    store = MetricsStore()
    up = _labels("up")
    store.write("p", [Sample(up, 2000, 1.0)])
    again = store.write("p", [Sample(up, 2000, 1.0), Sample(up, 1000, 1.0), Sample(up, 3000, 1.0)])
    assert (again.written, dict(again.rejected)) == (1, {"duplicate": 1, "out_of_order": 1})


def test_delta_samples_are_kept_cumulative() -> None:
    store = MetricsStore()
    total = _labels("requests_total", job="a")
    store.write("p", [Sample(total, 1000, 5.0, delta=True), Sample(total, 2000, 3.0, delta=True)])
    store.write("p", [Sample(total, 3000, 2.0, delta=True)])
    assert list(_values(store, Matcher("job", "=", "a")).values()) == [
        [(1000, 5.0), (2000, 8.0), (3000, 10.0)]
    ]


def test_reopened_file_refuses_what_it_holds_and_keeps_adding_deltas(tmp_path: Path) -> None:
    path = tmp_path / "metrics.duckdb"
    store = MetricsStore(path)
    total = _labels("requests_total")
    batch = [Sample(total, 1000, 5.0, delta=True), Sample(total, 2000, 1.0, delta=True)]
    store.write("p", batch, {"requests_total": Metadata("counter", "", "Requests.")})
    store.close()
    store = MetricsStore(path)  # as after a crash before the spool's checkpoint moved
    replay = store.write("p", batch)
    assert replay.written == 0 and replay.rejected["out_of_order"] == 1
    store.write("p", [Sample(total, 3000, 4.0, delta=True)])
    assert list(_values(store, Matcher("__name__", "=", "requests_total")).values()) == [
        [(1000, 5.0), (2000, 6.0), (3000, 10.0)]
    ]
    assert store.metadata("p") == {"requests_total": Metadata("counter", "", "Requests.")}
    store.close()


def test_series_limit_drops_new_series_and_names_the_label() -> None:
    store = MetricsStore(max_series_per_project=3)
    samples = [Sample(_labels("hits_total", user=f"u{i}"), 1000, 1.0) for i in range(5)]
    result = store.write("p", samples)
    assert result.written == 3 and result.rejected["series_limit"] == 2
    assert "hits_total has 3 series" in result.warning
    assert "'user' has 3 distinct values" in result.warning
    # known series go on; other projects have their own limit
    more = store.write("p", [Sample(_labels("hits_total", user="u0"), 2000, 2.0)])
    assert more.written == 1
    assert store.write("q", samples[:3]).written == 3
    assert store.stats() == {"p": 3, "q": 3}


def test_matchers_are_prometheus_matchers() -> None:
    store = MetricsStore()
    store.write(
        "p",
        [
            Sample(_labels("up", job="api", env="prod"), 1000, 1.0),
            Sample(_labels("up", job="api-v2"), 1000, 1.0),
            Sample(_labels("up", job="db", env=""), 1000, 0.0),
            Sample(_labels("down", job="api"), 1000, 0.0),
        ],
    )
    store.write("other", [Sample(_labels("up", job="api"), 1000, 1.0)])

    def jobs(*matchers: Matcher) -> list[str]:
        return sorted(s.labels["job"] for s in store.select("p", matchers, 0, 2000))

    up = Matcher("__name__", "=", "up")
    assert jobs(up) == ["api", "api-v2", "db"]
    assert jobs(up, Matcher("job", "=~", "api")) == ["api"]  # anchored, as in Prometheus
    assert jobs(up, Matcher("job", "=~", "api.*")) == ["api", "api-v2"]
    assert jobs(up, Matcher("job", "!~", "api.*")) == ["db"]
    assert jobs(up, Matcher("env", "=", "")) == ["api-v2", "db"]  # absent is empty
    assert jobs(up, Matcher("env", "!=", "")) == ["api"]
    assert jobs(Matcher("__name__", "=~", "up|down"), Matcher("job", "=", "api")) == ["api", "api"]
    with pytest.raises(ValidationError, match="regular expression"):
        jobs(up, Matcher("job", "=~", "("))


def test_time_range_and_label_lookups() -> None:
    store = MetricsStore()
    store.write("p", [Sample(_labels("up", job="a"), 1000, 1.0)])
    store.write("p", [Sample(_labels("up", job="b"), 5000, 1.0)])
    assert [s.labels["job"] for s in store.select("p", [Matcher("job", "=~", ".+")], 0, 2000)] == [
        "a"
    ]
    assert store.series("p", [[Matcher("__name__", "=", "up")]], 4000, 6000) == [
        {"__name__": "up", "job": "b"}
    ]
    assert store.label_names("p", [], 0, 10_000) == ["__name__", "job"]
    assert store.label_values("p", "job", [], 0, 10_000) == ["a", "b"]
    assert store.label_values("p", "job", [[Matcher("job", "!=", "a")]], 0, 10_000) == ["b"]


def test_retention_deletes_old_samples_and_series_left_without_one(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.duckdb")
    store.write("p", [Sample(_labels("up", job="old"), t, 1.0) for t in (1000, 2000)])
    store.write("p", [Sample(_labels("up", job="both"), t, 1.0) for t in (1500, 8000)])
    store.write(
        "p",
        [Sample(_labels("gone_metric"), 1000, 3.0)],
        {"gone_metric": Metadata("gauge", "", "x")},
    )
    assert store.stats() == {"p": 3}
    assert store.delete_before(5000) == (4, 2)
    assert _values(store, Matcher("__name__", "=~", ".+")) == {
        "__name__=up,job=both": [(8000, 1.0)]
    }
    assert store.stats() == {"p": 1}
    assert not store.has_metric("p", "gone_metric") and store.has_metric("p", "up")
    assert store.metadata("p") == {}
    # The series listed from the series table (first and last sample), not the samples.
    assert store.series("p", [[Matcher("__name__", "=", "up")]], 0, 4000) == []
    assert store.series("p", [[Matcher("__name__", "=", "up")]], 0, 9000) == [
        {"__name__": "up", "job": "both"}
    ]
    # A deleted series comes back as a new one, and is checked against nothing stored.
    assert store.write("p", [Sample(_labels("up", job="old"), 3000, 2.0)]).new_series == 1
    store.close()
    reopened = MetricsStore(tmp_path / "m.duckdb")
    assert reopened.stats() == {"p": 2}
    assert reopened.write("p", [Sample(_labels("up", job="both"), 7000, 1.0)]).rejected == {
        "out_of_order": 1
    }
    reopened.close()


def test_the_series_limit_holds_across_restarts_and_frees_with_retention(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "m.duckdb", max_series_per_project=2)
    store.write("p", [Sample(_labels("up", job=j), 1000 * i, 1.0) for i, j in enumerate("ab", 1)])
    store.close()
    store = MetricsStore(tmp_path / "m.duckdb", max_series_per_project=2)
    assert store.write("p", [Sample(_labels("up", job="c"), 5000, 1.0)]).rejected == {
        "series_limit": 1
    }
    assert store.delete_before(1500) == (1, 1)  # job a's only sample
    assert store.write("p", [Sample(_labels("up", job="c"), 5000, 1.0)]).new_series == 1
    store.close()
    store = MetricsStore(tmp_path / "m.duckdb", max_series_per_project=2)
    assert store.stats() == {"p": 2}
    assert store.write("p", [Sample(_labels("up", job="d"), 6000, 1.0)]).rejected == {
        "series_limit": 1
    }
    store.close()


def test_a_file_of_schema_1_gets_each_series_first_and_last(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    labels = (("__name__", "up"), ("job", "a"))
    sid = series_id("p", labels)
    con = duckdb.connect(str(path))
    _duckdb_schema.migrate(con, target=1, steps=MIGRATIONS)
    con.execute("INSERT INTO metric_series VALUES (?, 'p', 'up', MAP {'job': 'a'}, 0)", [sid])
    con.execute(
        "INSERT INTO metric_samples VALUES ($s, 1000, 1.0), ($s, 3000, NULL), ($s, 2000, 2.0)",
        {"s": sid},
    )
    con.close()
    store = MetricsStore(path)
    assert store.series("p", [[Matcher("job", "=", "a")]], 2500, 2600) == [
        {"__name__": "up", "job": "a"}
    ]
    # Its last sample (a staleness marker at 3000) is known: an older one is out of order.
    assert store.write("p", [Sample(labels, 2500, 1.0)]).rejected == {"out_of_order": 1}
    store.close()


def test_a_file_of_schema_3_gets_its_samples_keyed_by_series_number(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    a, b = _labels("up", job="a"), _labels("up", job="b")
    con = duckdb.connect(str(path))
    _duckdb_schema.migrate(con, target=3, steps=MIGRATIONS)
    for created, labels in ((2, a), (1, b)):  # b first: numbers follow creation
        con.execute(
            "INSERT INTO metric_series VALUES (?, 'p', 'up', MAP {'job': ?}, ?, 1000, 2000, 2.0)",
            [series_id("p", labels), dict(labels)["job"], created],
        )
    con.executemany(
        "INSERT INTO metric_samples VALUES (?, ?, ?)",
        [(series_id("p", a), 2000, 2.0), (series_id("p", b), 1000, None),
         (series_id("p", a), 1000, 1.0), (series_id("p", b), 2000, 5.0)],
    )  # fmt: skip
    con.close()
    store = MetricsStore(path)
    assert _values(store, Matcher("__name__", "=", "up")) == {
        "__name__=up,job=a": [(1000, 1.0), (2000, 2.0)],
        "__name__=up,job=b": [(1000, None), (2000, 5.0)],
    }
    c = _labels("up", job="c")
    assert store.write("p", [Sample(c, 3000, 3.0), Sample(a, 3000, 3.0)]).written == 2
    store.close()
    with duckdb.connect(str(path)) as con:
        numbers = con.execute("SELECT labels['job'], series_no FROM metric_series ORDER BY 2")
        assert numbers.fetchall() == [("b", 0), ("a", 1), ("c", 2)]
        columns = con.execute("SELECT column_name FROM duckdb_columns() "
                              "WHERE table_name = 'metric_samples'").fetchall()  # fmt: skip
        assert columns == [("series_no",), ("t_ms",), ("value",)]
    store = MetricsStore(path)
    assert _values(store, Matcher("job", "=~", "a|c")) == {
        "__name__=up,job=a": [(1000, 1.0), (2000, 2.0), (3000, 3.0)],
        "__name__=up,job=c": [(3000, 3.0)],
    }
    store.close()


@pytest.mark.parametrize("n", [3, 70_000])
def test_rows_are_put_in_series_then_time_order_whatever_order_they_come_in(n: int) -> None:
    rng = np.random.default_rng(n)
    rounds = 20_000 // n + 2
    k = np.tile(np.arange(n, dtype=np.int32), rounds)  # every series each round, jittered
    evenly = np.repeat(np.arange(rounds) * 15_000, n) + rng.integers(-3000, 3000, len(k))
    burst = evenly.copy()
    close = np.arange(0, len(k) - n, 97)
    burst[close + n] = burst[close] + 1  # some samples 1 ms after their series' one before
    for times in (evenly, burst, rng.integers(0, 10**9, len(k))):
        shuffle = rng.permutation(len(k))
        kk, tt = k[shuffle], times[shuffle]
        want = np.lexsort((tt, kk))
        order, in_order = series_order(kk, tt, n)
        assert (kk[order] == kk[want]).all() and (in_order == tt[want]).all()


def test_a_file_of_schema_4_keeps_its_series_without_a_primary_key(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    a, b = _labels("up", job="a"), _labels("up", job="b")
    con = duckdb.connect(str(path))
    _duckdb_schema.migrate(con, target=4, steps=MIGRATIONS)
    con.execute(
        "INSERT INTO metric_series VALUES (?, 'p', 'up', MAP {'job': 'a'}, 1, 1000, 2000, 2.0, 0)",
        [series_id("p", a)],
    )
    con.execute("INSERT INTO metric_samples VALUES (0, 1000, 1.0), (0, 2000, 2.0)")
    con.close()
    store = MetricsStore(path)
    assert store.write("p", [Sample(a, 2000, 2.0), Sample(b, 2000, 5.0)]).rejected == {
        "duplicate": 1
    }
    assert _values(store, Matcher("__name__", "=", "up")) == {
        "__name__=up,job=a": [(1000, 1.0), (2000, 2.0)],
        "__name__=up,job=b": [(2000, 5.0)],
    }
    store.close()
    with duckdb.connect(str(path)) as con:
        kinds = con.execute("SELECT constraint_type FROM duckdb_constraints() "
                            "WHERE table_name = 'metric_series'").fetchall()  # fmt: skip
        assert ("PRIMARY KEY",) not in kinds
        rows = con.execute("SELECT labels['job'], series_no FROM metric_series ORDER BY 2")
        assert rows.fetchall() == [("a", 0), ("b", 1)]
