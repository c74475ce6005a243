"""A trace's user, session and feature apply to all of its spans, whichever span carried them
and in whatever order the spans arrived (issue 15, item 3: plain OpenTelemetry apps)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.datagen import BASE_NS, MINUTE_NS
from tests.store.conftest import THE_DUCKDB_ENGINE, chdb_url, open_store
from watchkeeper.model import SpanBatch, SpanRow
from watchkeeper.store import SpanFilter, Store, _traces
from watchkeeper.store import _rollup as ru
from watchkeeper.store import _rollup_query as rq
from watchkeeper.store._arrow import spans_table
from watchkeeper.store._duckdb_schema import migrate
from watchkeeper.store._render import Query
from watchkeeper.store.clickhouse import ClickHouseStore
from watchkeeper.store.duckdb import DuckDBStore

#: Why some of these tests run on DuckDB only (tests/store/conftest.py).
DUCKDB_ONLY = {
    "test_a_version_7_file_gets_the_context_of_its_spans": THE_DUCKDB_ENGINE,
    "test_a_version_8_file_keeps_each_context_with_its_traces_start": THE_DUCKDB_ENGINE,
}

HOUR_NS = 3600 * 10**9
FIELDS = ("user_id", "session_id", "feature")
TRACES = 36  # one an hour: 36 hours, so a range over them is answered from the rollups
Order = Callable[[list[SpanRow]], list[SpanRow]]


def _trace(i: int, carrier: int) -> list[SpanRow]:
    """A root (HTTP), two LLM calls that hold the tokens and cost, and a tool call; only the
    span at index `carrier` has the user, session and feature (every fifth trace: none)."""
    tid, start = f"{i + 1:032x}", BASE_NS + 17 * MINUTE_NS + i * HOUR_NS
    root = SpanRow("plain", tid, f"{i + 1:012x}0000", "", "POST /chat", start, 900_000_000,
                   service="app", operation="http")  # fmt: skip
    children = [
        SpanRow("plain", tid, f"{i + 1:012x}{j:04x}", root.span_id, "chat gpt-4o",
                start + j * 1_000_000, (100 + 37 * j + i) * 1_000_000, service="app",
                operation="llm", provider="openai", request_model="gpt-4o",
                input_tokens=100 * j + i, output_tokens=10 * j + i,
                cost_usd=round(0.0123 * j + 0.0007 * i, 6), cost_source="estimated")
        for j in (1, 2)
    ]  # fmt: skip
    tool = SpanRow("plain", tid, f"{i + 1:012x}0009", root.span_id, "tool search",
                   start + 3_000_000, 5_000_000, service="app", operation="tool")  # fmt: skip
    spans = [root, *children, tool]
    if i % 5 != 4:
        ctx = {
            "user_id": f"u{i % 4}",
            "session_id": f"s{i // 3}",
            "feature": ("chat", "rag")[i % 2],
        }
        spans[carrier] = replace(spans[carrier], **ctx)
    return spans


def _filled(spans: Sequence[SpanRow]) -> list[SpanRow]:
    """The spans as the store keeps them: each NULL field taken from its trace."""
    ctx: dict[str, dict[str, str]] = defaultdict(dict)
    for s in spans:
        for f in FIELDS:
            if getattr(s, f) is not None:
                ctx[s.trace_id].setdefault(f, getattr(s, f))
    return [
        replace(s, **{f: getattr(s, f) or ctx[s.trace_id].get(f) for f in FIELDS}) for s in spans
    ]


def _children_first(spans: list[SpanRow]) -> list[SpanRow]:
    return [*spans[1:], spans[0]]


def _middle_last(spans: list[SpanRow]) -> list[SpanRow]:
    return [spans[0], spans[2], spans[3], spans[1]]


#: (span carrying the context, arrival order of a trace's spans)
CASES: dict[str, tuple[int, Order]] = {
    "children-first": (0, _children_first),
    "root-first": (0, list),
    "middle-span-last": (1, _middle_last),
}


def _write(store: Store, traces: Iterable[list[SpanRow]], size: int) -> None:
    """Spans in arrival order, `size` to a write; each write is replayed and changes nothing."""
    spans = [s for t in traces for s in t]
    for k in range(0, len(spans), size):
        batch = SpanBatch(spans[k : k + size])
        assert store.write(batch) == len(batch.spans)
        assert store.write(batch) == 0


def _range() -> SpanFilter:
    """Mid-hour edges, 58 hours: whole hours from the rollups, the edges from spans."""
    first = BASE_NS + 17 * MINUTE_NS
    return SpanFilter("plain", first + 10 * MINUTE_NS, first + (TRACES - 1) * HOUR_NS)


def _in(f: SpanFilter, spans: Sequence[SpanRow]) -> list[SpanRow]:
    assert f.start_ns is not None and f.end_ns is not None
    return [s for s in spans if f.start_ns <= s.start_ns < f.end_ns]


def _spend(spans: Sequence[SpanRow], field: str) -> dict[str | None, tuple[int, int, float]]:
    """Per value of `field`: spans, input tokens, cost."""
    out: dict[str | None, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for s in spans:
        acc = out[getattr(s, field)]
        acc[0] += 1
        acc[1] += s.input_tokens or 0
        acc[2] += s.cost_usd or 0.0
    return {k: (int(v[0]), int(v[1]), v[2]) for k, v in out.items()}


def _check_spend(
    got: dict[str | None, tuple[int, int, float]], want: dict[str | None, tuple[int, int, float]]
) -> None:
    """The same keys, counts and tokens; costs equal up to float rounding (not rounded to the
    cent first: a sum of 0.085 and one of 0.08499999999999999 round to different cents)."""
    assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in want.items()}
    for k, v in got.items():
        assert v[2] == pytest.approx(want[k][2])


def _check(store: Store, spans: Sequence[SpanRow], long: SpanFilter | None = None) -> None:
    """Every answer by user, session and feature is what the filled spans say, over `long`
    (from the rollups) and its first 20 hours (from spans)."""
    want = _filled(spans)
    for s in want[:: len(want) // 8]:
        detail = store.trace("plain", s.trace_id)
        assert detail is not None
        stored = {x.span_id: x for x in detail.spans}
        assert all(getattr(stored[s.span_id], f) == getattr(s, f) for f in FIELDS)
    long = long or _range()
    short = replace(long, end_ns=long.start_ns + 20 * HOUR_NS)  # a day or less: from spans
    for f in (long, short):
        rows = _in(f, want)
        for by, field in (("user", "user_id"), ("session", "session_id"), ("feature", "feature")):
            for percentiles in (False, True):
                groups = store.breakdown(f, by, limit=100, order="cost", percentiles=percentiles)
                got = {
                    g.key: (g.summary.count, g.summary.input_tokens, g.summary.cost_usd)
                    for g in groups
                }
                _check_spend(got, _spend(rows, field))
        for field, value in (("user_id", "u1"), ("session_id", "s4")):
            s = store.summary(replace(f, **{field: value}))
            _check_spend({value: (s.count, s.input_tokens, s.cost_usd)},
                         {value: _spend(rows, field).get(value, (0, 0, 0.0))})  # fmt: skip
        for percentiles in (False, True):
            s = store.summary(replace(f, features=("rag",)), percentiles=percentiles)
            _check_spend(
                {"rag": (s.count, s.input_tokens, s.cost_usd)},
                {"rag": _spend(rows, "feature").get("rag", (0, 0, 0.0))},
            )
        for activity, field in (
            (store.users(f, 100), "user_id"),
            (store.sessions(f, 100), "session_id"),
        ):
            got = {a.key: (a.spans, a.input_tokens, a.cost_usd) for a in activity}
            _check_spend(got, {k: v for k, v in _spend(rows, field).items() if k is not None})
    assert rq.eligible(long, "user", ru.USERS, percentiles=False)  # the rollup path was taken
    assert rq.eligible(replace(long, features=("rag",)), None, ru.TOTALS, percentiles=False)


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 10])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_traces_context_applies_to_all_its_spans(
    empty_store: Store, case: str, size: int
) -> None:
    carrier, order = CASES[case]
    traces = [_trace(i, carrier) for i in range(TRACES)]
    _write(empty_store, (order(t) for t in traces), size)
    _check(empty_store, [s for t in traces for s in t])


def test_a_spans_own_value_wins(empty_store: Store) -> None:
    root, llm, other, tool = _trace(0, 0)
    other = replace(other, user_id="batch-job")
    _write(
        empty_store, [[root, llm], [other, tool]], 2
    )  # spans that disagree: the first stored wins
    detail = empty_store.trace("plain", root.trace_id)
    assert detail is not None
    assert {s.span_id: s.user_id for s in detail.spans} == {
        root.span_id: "u0",
        llm.span_id: "u0",
        other.span_id: "batch-job",
        tool.span_id: "u0",
    }


def test_a_write_of_stored_and_new_spans_stores_the_new_ones_once(empty_store: Store) -> None:
    """A replayed record batched with new ones: each write holds the spans of the write
    before (stored), its own (one of them twice), a trace's root arriving writes after its
    children; only the new spans are stored, and every context reaches the whole trace."""
    spans = [s for i in range(TRACES) for s in _children_first(_trace(i, 0))]
    stored: list[SpanRow] = []
    for k in range(0, len(spans), 6):  # 6: a trace's spans over two writes
        new = spans[k : k + 6]
        mixed = [*new[:3], *stored, *new[3:], new[0]]
        assert empty_store.write(SpanBatch(mixed)) == len(new)
        stored = new
    assert empty_store.write(SpanBatch(spans)) == 0
    assert empty_store.summary(SpanFilter("plain")).count == len(spans)
    _check(empty_store, spans)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("engine", "compact_every"),
    [("duckdb", 1), ("duckdb", 4), ("duckdb", 1000), ("clickhouse", 1000)],
)
def test_the_rollups_stay_exact_as_partial_rows_merge(engine: str, compact_every: int) -> None:
    """Rows moved from "no user" to a user are merged away; every sum equals the spans'.

    ClickHouse merges partial rows itself (`compact_every` says nothing to it) and never
    rebuilds an hour: there the key spans left keeps bounds for its extremes."""
    traces = [_trace(i, 0) for i in range(TRACES)]
    # stored first, in the same hours: traces without any user (the key the others' spans
    # leave), so a merged row of that key still holds the extremes of spans that left it
    traces = [
        [replace(s, trace_id=f"f{s.trace_id[1:]}", start_ns=s.start_ns + 5 * MINUTE_NS,
                 user_id=None, session_id=None, feature=None) for s in t]
        for t in traces
    ] + traces  # fmt: skip
    rolled = open_store(engine, compact_every=compact_every)
    raw = open_store(engine, use_rollup=False)
    for store in (rolled, raw):
        _write(store, (_children_first(t) for t in traces), 3)
    assert rolled._rollup_for(_range(), "user", percentiles=False) is ru.USERS
    f = _range()
    for by in ("user", "feature", "model", "service"):
        got = rolled.breakdown(f, by, limit=100, percentiles=False)  # type: ignore[arg-type]
        want = raw.breakdown(f, by, limit=100, percentiles=False)  # type: ignore[arg-type]
        assert [g.key for g in got] == [g.key for g in want]
        for g, w in zip(got, want, strict=True):
            exact = ("count", "success", "errors", "input_tokens", "output_tokens", "missing_price")
            assert [getattr(g.summary, k) for k in exact] == [getattr(w.summary, k) for k in exact]
            assert g.summary.cost_usd == pytest.approx(w.summary.cost_usd)
            assert g.summary.avg_ms == pytest.approx(w.summary.avg_ms)
            # a named key only gains spans: its extremes are exact; the key spans left is
            # exact again once the hours it left are merged (rebuilt from their spans)
            if g.key is not None or compact_every == 1:
                assert (g.summary.max_ms, g.summary.first_ns, g.summary.last_ns) == (
                    w.summary.max_ms, w.summary.first_ns, w.summary.last_ns,
                )  # fmt: skip
    for table in (ru.USERS.name, ru.TOTALS.name):
        (zero,) = rolled._rows(Query(f"SELECT count(*) FROM {table} WHERE n = 0", {}))[0]
        assert compact_every > 1 or zero == 0 or engine == "clickhouse"
    rolled.close()
    raw.close()


@pytest.mark.slow
@pytest.mark.parametrize("project", [None, "plain"])
def test_retention_drops_the_context_of_traces_gone(
    empty_store: Store, project: str | None
) -> None:
    traces = [_trace(i, 0) for i in range(TRACES)]
    store: Any = empty_store
    _write(store, (_children_first(t) for t in traces[:20]), 10)
    cut = BASE_NS + 8 * HOUR_NS
    store.delete_before(project, cut)
    table = "traces" if store.dialect.name == "duckdb" else "trace_context"  # where contexts live
    (left,) = store._rows(
        Query(f"SELECT count(DISTINCT trace_id) FROM {table} WHERE user_id IS NOT NULL", {})
    )[0]
    assert left == sum(1 for i in range(8, 20) if i % 5 != 4)
    _write(store, (_children_first(t) for t in traces[20:]), 10)
    _check(
        store, [s for t in traces[8:] for s in t], replace(_range(), start_ns=cut + 10 * MINUTE_NS)
    )


def test_a_version_7_file_gets_the_context_of_its_spans(tmp_path: Path) -> None:
    """Spans stored before the upgrade are filled, and the rollups by user and feature too."""
    traces = [_trace(i, 0) for i in range(TRACES)]
    spans = [s for t in traces for s in t]
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    assert migrate(con, target=7) == 7
    con.register("old_rows", spans_table(spans))
    con.execute("INSERT INTO spans SELECT * FROM old_rows")
    con.execute(
        "INSERT INTO traces SELECT trace_id, min(start_ns), max(start_ns) FROM spans GROUP BY ALL"
    )
    for table in ru.TABLES:
        con.execute(ru.insert_sql("spans", table=table))
    con.close()
    store = DuckDBStore(path)
    _check(store, spans)
    assert store.write(SpanBatch(spans)) == 0
    store.close()


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_a_span_beyond_the_window_keeps_its_own_fields(tmp_path: Path, engine: str) -> None:
    """A write reads the contexts of the spans within the window around its own only."""
    store: Store = (
        DuckDBStore(None, trace_window_s=60)
        if engine == "duckdb"
        else ClickHouseStore(chdb_url(tmp_path), database="window", trace_window_s=60)
    )
    root, llm, other, tool = _trace(0, 0)
    early = replace(llm, span_id="e" * 16, start_ns=root.start_ns - 2 * MINUTE_NS)
    near = replace(llm, start_ns=root.start_ns + 50 * 10**9)
    late = replace(other, start_ns=root.start_ns + 2 * MINUTE_NS)
    _write(store, [[early], [root], [near], [late, tool]], 1)
    detail = store.trace("plain", root.trace_id)
    assert detail is not None
    assert {s.span_id: s.user_id for s in detail.spans} == {
        early.span_id: None,  # stored before the root, two minutes before it
        root.span_id: "u0",
        near.span_id: "u0",
        late.span_id: None,  # two minutes after the span that brought the context
        tool.span_id: "u0",
    }
    store.close()


def test_a_version_8_file_keeps_each_context_with_its_traces_start(tmp_path: Path) -> None:
    """Contexts stored without their start are kept, with the start of their trace (in
    `trace_context` at version 9, in the trace's row of `traces` since version 11)."""
    traces = [_trace(i, 0) for i in range(TRACES)]
    roots = [t[0] for t in traces]
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    assert migrate(con, target=8) == 8
    con.execute("DROP TABLE trace_context")  # the table as version 8 made it
    con.execute(
        "CREATE TABLE trace_context (project VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, "
        "user_id VARCHAR, session_id VARCHAR, feature VARCHAR, PRIMARY KEY (project, trace_id))"
    )
    con.register("old_rows", spans_table(roots))
    con.execute("INSERT INTO spans SELECT * FROM old_rows")
    con.execute(
        "INSERT INTO traces SELECT trace_id, min(start_ns), max(start_ns) FROM spans GROUP BY ALL"
    )
    con.execute(
        "INSERT INTO trace_context SELECT project, trace_id, user_id, session_id, feature "
        "FROM spans WHERE user_id IS NOT NULL"
    )
    for table in ru.TABLES:
        con.execute(ru.insert_sql("spans", table=table))
    con.close()
    store = DuckDBStore(path)
    starts = store._rows(
        Query(
            "SELECT trace_id, min_start_ns FROM traces WHERE user_id IS NOT NULL "
            "AND session_id IS NOT NULL AND feature IS NOT NULL",
            {},
        )
    )
    assert dict(starts) == {r.trace_id: r.start_ns for r in roots if r.user_id is not None}
    tables = store._rows(Query("SELECT table_name FROM duckdb_tables()", {}))
    assert ("trace_context",) not in tables  # its rows moved into traces (version 11)
    _write(store, (t[1:] for t in traces), 10)  # the children, after the upgrade
    _check(store, [s for t in traces for s in t])
    store.close()


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_a_traces_context_reaches_along_its_stored_spans(tmp_path: Path, engine: str) -> None:
    """Each write's row of a trace carries its context, so a span takes it from the nearest
    stored span of its trace, not only from the span that brought it."""
    store: Store = (
        DuckDBStore(None, trace_window_s=60)
        if engine == "duckdb"
        else ClickHouseStore(chdb_url(tmp_path), database="reach", trace_window_s=60)
    )
    root, llm, other, tool = _trace(0, 0)
    near = replace(llm, start_ns=root.start_ns + 50 * 10**9)
    later = replace(other, start_ns=root.start_ns + 100 * 10**9)  # 50 s after `near`
    _write(store, [[root], [near], [later], [tool]], 1)
    detail = store.trace("plain", root.trace_id)
    assert detail is not None
    assert {s.span_id: s.user_id for s in detail.spans} == dict.fromkeys(
        (root.span_id, near.span_id, later.span_id, tool.span_id), "u0"
    )
    store.close()


@pytest.mark.parametrize("order", ["children-first", "root-first"])
def test_ids_of_another_form_get_their_context(empty_store: Store, order: str) -> None:
    """Ids that are not 32 hex characters have no numeric key: their rows are still found."""
    spans = [replace(s, trace_id="trace/α-1") for s in _trace(0, 0)]
    other = [replace(s, trace_id="trace/α-2") for s in _trace(1, 0)]
    first, rest = (spans[1:], spans[:1]) if order == "children-first" else (spans[:1], spans[1:])
    _write(empty_store, [first + other[1:], rest + other[:1]], 8)
    for trace in (spans, other):
        detail = empty_store.trace("plain", trace[0].trace_id)
        assert detail is not None
        assert {s.user_id for s in detail.spans} == {trace[0].user_id}


def test_ids_with_quotes_backslashes_and_braces_are_kept_apart(empty_store: Store) -> None:
    """ClickHouse's writer sends a batch's ids as SQL literals: quotes, backslashes and
    placeholder-like braces in them are escaped, the replay stores nothing, the context
    learned writes later reaches the trace's spans."""
    ids = ("it's\\{p0:String}", "it\\'s", "it''s")
    traces = [[replace(s, trace_id=i, span_id=f"{s.span_id}'\\") for s in _trace(n, 0)]
              for n, i in enumerate(ids)]  # fmt: skip
    _write(empty_store, [[s for t in traces for s in t[1:]], [t[0] for t in traces]], 20)
    for trace in traces:
        detail = empty_store.trace("plain", trace[0].trace_id)
        assert detail is not None
        assert sorted(s.span_id for s in detail.spans) == sorted(s.span_id for s in trace)
        assert {s.user_id for s in detail.spans} == {trace[0].user_id}


@pytest.mark.parametrize(
    "prefix", ["0" * 16, "5f3c2a1b" + "0" * 8], ids=["64-bit-tracer", "x-ray-timestamp"]
)
def test_ids_alike_on_the_left_are_told_apart(empty_store: Store, prefix: str) -> None:
    """Ids whose first 64 bits are all the same (64-bit ids of older tracers, X-Ray's
    timestamp first) each get their own trace's context: the key is the id's right half."""
    traces = [
        [replace(s, trace_id=prefix + s.trace_id[16:]) for s in _trace(i, 0)] for i in range(12)
    ]
    assert len({_traces.key(t[0].trace_id) for t in traces}) == len(traces)
    _write(empty_store, (_children_first(t) for t in traces), 5)
    _check(empty_store, [s for t in traces for s in t])


def test_ids_not_of_32_hex_characters_get_their_context(empty_store: Store) -> None:
    """Ids of another form (which ingest does not make: no numeric key) beside usual ones,
    children first, a trace across writes: each trace's spans get its context."""
    traces = [
        [replace(s, trace_id=f"Trace-{i}") if i % 2 else s for s in _trace(i, 0)] for i in range(8)
    ]
    assert len({_traces.key(t[0].trace_id) for t in traces}) == 5  # None for the odd ones
    _write(empty_store, (_children_first(t) for t in traces), 3)
    _check(empty_store, [s for t in traces for s in t])
