"""The store suite: written once against the `Store` protocol, run on every backend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson
import pytest
import zstandard

from tests.datagen import MINUTE_NS, NEEDLE, Dataset, generate, quantile_cont
from watchkeeper.errors import StoreError, ValidationError
from watchkeeper.model import ColumnBatch, PayloadRow, SpanBatch, SpanRow
from watchkeeper.store import Dimension, SpanFilter, Store, Summary
from watchkeeper.store._payload import _ZSTD_MAGIC, RAW_MAX

Pred = Callable[[SpanRow], bool]


def expect(spans: Sequence[SpanRow], s: Summary) -> None:
    """Assert that a summary is exactly what the rows say."""
    assert s.count == len(spans)
    outcomes = Counter(x.outcome for x in spans)
    assert (s.success, s.errors, s.timeouts, s.fallbacks, s.rejected) == (
        outcomes["success"], outcomes["error"], outcomes["timeout"], outcomes["fallback"],
        outcomes["rejected"],
    )  # fmt: skip
    ms = [x.duration_ns / 1e6 for x in spans]
    for q, got in ((0.5, s.p50_ms), (0.9, s.p90_ms), (0.95, s.p95_ms), (0.99, s.p99_ms)):
        assert got == pytest.approx(quantile_cont(ms, q))
    assert s.max_ms == pytest.approx(max(ms))
    assert s.avg_ms == pytest.approx(sum(ms) / len(ms))
    assert s.input_tokens == sum(x.input_tokens or 0 for x in spans)
    assert s.output_tokens == sum(x.output_tokens or 0 for x in spans)
    assert s.cache_read_tokens == sum(x.cache_read_tokens or 0 for x in spans)
    assert s.cost_usd == pytest.approx(sum(x.cost_usd or 0.0 for x in spans))
    assert s.missing_price == sum(x.cost_source == "missing" for x in spans)
    assert (s.first_ns, s.last_ns) == (  # first start, last end
        min(x.start_ns for x in spans),
        max(x.start_ns + x.duration_ns for x in spans),
    )


def test_write_is_idempotent(empty_store: Store, demo: Dataset) -> None:
    batch = demo.batch()
    assert empty_store.write(batch) == len(demo.spans)
    assert empty_store.write(batch) == 0  # a replay after a crash
    half = demo.spans[len(demo.spans) // 2 :]
    extra = generate("demo", 310).spans[len(demo.spans) :]  # ten more traces
    retry = type(batch)(half + extra + extra[:3])  # a client retry, with duplicates inside
    assert empty_store.write(retry) == len(extra)
    assert empty_store.count("demo") == len(demo.spans) + len(extra)
    assert empty_store.count() == empty_store.count("demo")


def test_a_columnar_batch_is_stored_as_its_rows(empty_store: Any, demo: Dataset) -> None:
    """What ingest hands over (rows as byte columns, one chunk per spool record, payloads
    packed by the store's codec) is stored as the same rows are, once each."""
    codec = empty_store.payload_codec()
    batch = ColumnBatch()
    for part in demo.batches(97):
        packed = SpanBatch(part.spans, [codec.pack(p) for p in part.payloads])
        batch.extend(ColumnBatch.of(packed, packed=True))
    batch.extend(ColumnBatch.of(SpanBatch(demo.spans[:5], []), packed=True))  # sent twice
    assert len(batch) == len(demo.spans) + 5
    assert empty_store.write(batch) == len(demo.spans)
    assert empty_store.write(batch) == 0  # a replay
    traces = sorted({p.trace_id for p in demo.payloads})
    for tid in (traces[0], traces[-1]):
        t = empty_store.trace("demo", tid)
        assert t is not None
        assert t.spans == sorted(
            (s for s in demo.spans if s.trace_id == tid), key=lambda s: (s.start_ns, s.span_id)
        )
        assert t.payloads == {p.span_id: p for p in demo.payloads if p.trace_id == tid}
    expect(demo.spans, empty_store.summary(SpanFilter("demo")))


def test_payload_documents_short_long_and_older_read_back(empty_store: Any) -> None:
    """A short `io` or `meta` document is stored as its JSON (the store compresses the
    column), a long one as a zstd frame, and short frames as earlier versions wrote them
    (every `io`, and `meta` before) still read."""
    codec = empty_store.payload_codec()
    long = "x" * RAW_MAX
    rows = [
        PayloadRow("demo", "a" * 32, f"{i + 1:016x}", 1_000 + i, text, None, doc, "{}")
        for i, (text, doc) in enumerate(
            [("in", '{"k":"short"}'), (long, orjson.dumps({"k": long}).decode())]
        )
    ]
    older = PayloadRow("demo", "a" * 32, f"{3:016x}", 1_002, None, "out", '{"v":1}', '{"r":2}')
    packed = [codec.pack(p) for p in rows]
    assert packed[0].io.startswith(b"[") and packed[1].io.startswith(_ZSTD_MAGIC)
    assert packed[0].meta.startswith(b"[") and packed[1].meta.startswith(_ZSTD_MAGIC)
    zc = zstandard.ZstdCompressor()
    packed.append(
        replace(
            codec.pack(older),
            io=zc.compress(orjson.dumps([older.input, older.output])),
            meta=zc.compress(orjson.dumps([older.attributes, older.resource, "[]", "[]", None])),
        )
    )
    spans = [SpanRow("demo", "a" * 32, p.span_id, "", "s", p.start_ns, 10) for p in packed]
    assert empty_store.write(ColumnBatch.of(SpanBatch(spans, packed), packed=True)) == 3
    t = empty_store.trace("demo", "a" * 32)
    assert t is not None
    assert t.payloads == {p.span_id: p for p in [*rows, older]}
    found = empty_store.search_spans(SpanFilter("demo", text="OUT")).items
    assert [s.span_id for s in found] == [older.span_id]  # the text of an older frame


def test_empty_store_answers(empty_store: Store) -> None:
    empty_store.ping()
    s = empty_store.summary(SpanFilter("demo"))
    assert s.count == 0 and s.p95_ms is None and s.success_rate is None
    assert empty_store.breakdown(SpanFilter("demo"), "model") == []
    assert empty_store.search_spans(SpanFilter("demo")).items == []
    assert empty_store.trace("demo", "0" * 32) is None
    assert empty_store.delete_before(None, 10**19) == 0


def test_summary_matches_rows(store: Store, demo: Dataset) -> None:
    expect(demo.spans, store.summary(SpanFilter("demo")))


@pytest.mark.parametrize(
    ("scope", "pred"),
    [("requests", lambda s: s.parent_span_id == ""), ("llm", lambda s: s.operation == "llm")],
)
def test_scopes(store: Store, demo: Dataset, scope: str, pred: Pred) -> None:
    f = SpanFilter("demo", scope=scope)  # type: ignore[arg-type]
    expect([s for s in demo.spans if pred(s)], store.summary(f))


FILTERS: list[tuple[dict[str, object], Pred]] = [
    ({"services": ("chat-api",)}, lambda s: s.service == "chat-api"),
    ({"environments": ("staging",)}, lambda s: s.environment == "staging"),
    ({"models": ("gpt-4o",)}, lambda s: "gpt-4o" in (s.request_model, s.response_model)),
    ({"outcomes": ("error", "timeout")}, lambda s: s.outcome in ("error", "timeout")),
    ({"providers": ("anthropic",)}, lambda s: s.provider == "anthropic"),
    ({"routes": ("/v1/chat",)}, lambda s: s.http_route == "/v1/chat"),
    ({"agents": ("planner",)}, lambda s: s.agent_name == "planner"),
    ({"features": ("answer",)}, lambda s: s.feature == "answer"),
    ({"operations": ("tool", "http")}, lambda s: s.operation in ("tool", "http")),
    ({"user_id": "user-3"}, lambda s: s.user_id == "user-3"),
    ({"session_id": "session-4"}, lambda s: s.session_id == "session-4"),
    ({"name": "tool search"}, lambda s: s.name == "tool search"),
    ({"min_duration_ms": 1000.0, "max_duration_ms": 2000.0},
     lambda s: 1_000_000_000 <= s.duration_ns <= 2_000_000_000),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "pred"), FILTERS)
def test_filters(store: Store, demo: Dataset, kwargs: dict[str, object], pred: Pred) -> None:
    expect([s for s in demo.spans if pred(s)], store.summary(SpanFilter("demo", **kwargs)))  # type: ignore[arg-type]


def test_time_range_is_half_open(store: Store, demo: Dataset) -> None:
    lo, hi = demo.spans[30].start_ns, demo.spans[300].start_ns
    got = store.summary(SpanFilter("demo", start_ns=lo, end_ns=hi))
    expect([s for s in demo.spans if lo <= s.start_ns < hi], got)


def test_summary_of_last_n(store: Store, demo: Dataset) -> None:
    newest = sorted(demo.spans, key=lambda s: s.start_ns)[-50:]
    expect(newest, store.summary(SpanFilter("demo"), last_n=50))
    with pytest.raises(ValidationError):
        store.summary(SpanFilter("demo"), last_n=0)


def test_breakdown_by_model(store: Store, demo: Dataset) -> None:
    groups = store.breakdown(SpanFilter("demo", scope="llm"), "model", limit=20)
    llm = [s for s in demo.spans if s.operation == "llm"]
    by = Counter(s.response_model or s.request_model for s in llm)
    assert [(g.key, g.summary.count) for g in groups] == sorted(
        by.items(), key=lambda kv: (-kv[1], kv[0])
    )
    for g in groups:
        expect([s for s in llm if (s.response_model or s.request_model) == g.key], g.summary)


@pytest.mark.parametrize("by", ["user", "model"])
def test_breakdown_without_percentiles_is_the_same_but_for_them(
    store: Store, demo: Dataset, by: Dimension
) -> None:
    full = store.breakdown(SpanFilter("demo"), by, limit=10, order="cost")
    lean = store.breakdown(SpanFilter("demo"), by, limit=10, order="cost", percentiles=False)
    assert [g.key for g in lean] == [g.key for g in full]
    for a, b in zip(full, lean, strict=True):
        assert b.summary.p95_ms is None and a.summary.p95_ms is not None
        a.summary.p50_ms = a.summary.p90_ms = a.summary.p95_ms = a.summary.p99_ms = None
        assert a.summary == b.summary


@pytest.mark.parametrize("last_n", [None, 7])
def test_summary_without_percentiles_is_the_same_but_for_them(
    store: Store, last_n: int | None
) -> None:
    f = SpanFilter("demo", scope="llm")
    full, lean = store.summary(f, last_n), store.summary(f, last_n, percentiles=False)
    assert lean.p50_ms is None and full.p50_ms is not None
    full.p50_ms = full.p90_ms = full.p95_ms = full.p99_ms = None
    assert lean == full


@pytest.mark.parametrize("order", ["count", "cost", "errors", "p95"])
def test_breakdown_orders_and_limits(store: Store, demo: Dataset, order: str) -> None:
    groups = store.breakdown(SpanFilter("demo"), "user", limit=3, order=order)
    assert len(groups) == 3
    full = store.breakdown(SpanFilter("demo"), "user", limit=100, order=order)
    assert [g.key for g in full[:3]] == [g.key for g in groups]
    value = {
        "count": lambda s: s.count,
        "cost": lambda s: s.cost_usd,
        "errors": lambda s: s.errors + s.timeouts + s.rejected,
        "p95": lambda s: s.p95_ms,
    }[order]
    assert [value(g.summary) for g in full] == sorted(
        (value(g.summary) for g in full), reverse=True
    )


def test_breakdown_keeps_missing_values_as_none(store: Store, demo: Dataset) -> None:
    groups = {g.key: g.summary.count for g in store.breakdown(SpanFilter("demo"), "provider")}
    assert groups[None] == sum(s.provider is None for s in demo.spans)
    with pytest.raises(ValidationError):
        store.breakdown(SpanFilter("demo"), "colour", limit=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.breakdown(SpanFilter("demo"), "model", order="loudest")


def test_timeseries(store: Store, demo: Dataset) -> None:
    step_s = 3600
    points = store.timeseries(SpanFilter("demo", scope="requests"), step_s)
    roots = [s for s in demo.spans if s.parent_span_id == ""]
    buckets = Counter(s.start_ns // (step_s * 10**9) * step_s * 10**9 for s in roots)
    assert [(p.bucket_ns, p.summary.count) for p in points] == sorted(buckets.items())
    assert all(p.key is None for p in points)


def test_timeseries_split_by_top_keys(store: Store, demo: Dataset) -> None:
    points = store.timeseries(SpanFilter("demo", scope="llm"), 7200, by="model", limit=2)
    llm = [s for s in demo.spans if s.operation == "llm"]
    counts = Counter(s.response_model or s.request_model for s in llm)
    top = sorted(counts, key=lambda k: (-counts[k], k))[:2]  # ties go to the smaller key
    assert {p.key for p in points} == set(top)
    assert sum(p.summary.count for p in points) == sum(
        (s.response_model or s.request_model) in top for s in llm
    )
    with pytest.raises(ValidationError):
        store.timeseries(SpanFilter("demo", start_ns=0, end_ns=10**18), 1)


def test_heatmap(store: Store, demo: Dataset) -> None:
    lo = demo.spans[0].start_ns
    f = SpanFilter("demo", start_ns=lo, end_ns=lo + 180 * MINUTE_NS)
    bounds = [100.0, 1000.0, 2500.0]
    h = store.heatmap(f, 3600, bounds)
    assert h.bucket_starts_ns == [lo // 3600e9 * 3600 * 10**9 + k * 3600 * 10**9 for k in range(4)]
    inside = [s for s in demo.spans if lo <= s.start_ns < lo + 180 * MINUTE_NS]
    assert sum(map(sum, h.counts)) == len(inside)
    levels = Counter(sum(s.duration_ns > b * 1e6 for b in bounds) for s in inside)
    assert [sum(row[k] for row in h.counts) for k in range(4)] == [levels[k] for k in range(4)]


def _all_pages(store: Store, f: SpanFilter, limit: int) -> list[list[SpanRow]]:
    pages, cursor = [], None
    while True:
        page = store.search_spans(f, limit=limit, cursor=cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_paging_visits_every_span_once_newest_first(store: Store, demo: Dataset) -> None:
    f = SpanFilter("demo", services=("chat-api",))
    pages = _all_pages(store, f, 37)
    got = [s for page in pages for s in page]
    want = sorted((s for s in demo.spans if s.service == "chat-api"),
                  key=lambda s: (s.start_ns, s.span_id), reverse=True)  # fmt: skip
    assert got == want
    assert all(len(p) == 37 for p in pages[:-1])


def test_text_search_reads_payloads(store: Store, demo: Dataset) -> None:
    f = SpanFilter("demo", text=NEEDLE.upper())
    got = [s for page in _all_pages(store, f, 5) for s in page]
    wanted = {p.span_id for p in demo.payloads if NEEDLE in (p.input or "")}
    assert len(wanted) > 5 and {s.span_id for s in got} == wanted
    assert len(got) == len(wanted)
    assert store.search_spans(SpanFilter("demo", text="no such words")).items == []
    assert store.search_spans(SpanFilter("other", text=NEEDLE)).items != []  # its own zebras


def test_bad_cursor_is_a_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.search_spans(SpanFilter("demo"), cursor="not-a-cursor!")


def test_trace_has_spans_payloads_and_scores(store: Store, demo: Dataset) -> None:
    tid = sorted({s.trace_id for s in demo.spans})[0]
    t = store.trace("demo", tid)
    assert t is not None
    want = sorted(
        (s for s in demo.spans if s.trace_id == tid), key=lambda s: (s.start_ns, s.span_id)
    )
    assert t.spans == want
    assert set(t.payloads) == {p.span_id for p in demo.payloads if p.trace_id == tid}
    assert all(t.payloads[p.span_id] == p for p in demo.payloads if p.trace_id == tid)
    assert {s.name for s in t.scores} == {"user_feedback", "relevance"}
    assert store.trace("other", tid) is None  # project isolation
    assert store.trace("demo", "f" * 32) is None


def test_a_long_trace_comes_in_pages(empty_store: Store) -> None:
    root = SpanRow("demo", "a" * 32, f"{1:016x}", "", "root", 1_000, 10_000)
    children = [
        SpanRow("demo", "a" * 32, f"{i:016x}", root.span_id, f"step {i}", 1_000 + i // 3, 5)
        for i in range(2, 1202)  # three spans share each start: the keyset breaks ties
    ]
    empty_store.write(SpanBatch([root, *children]))
    want = sorted([root, *children], key=lambda s: (s.start_ns, s.span_id))
    got: list[SpanRow] = []
    cursor = None
    pages = 0
    while True:
        page = empty_store.trace("demo", "a" * 32, limit=500, cursor=cursor)
        assert page is not None and page.span_count == 1201
        assert len(page.spans) <= 500
        got += page.spans
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3 and got == want
    with pytest.raises(ValidationError):
        empty_store.trace("demo", "a" * 32, limit=0)


def test_scores(store: Store, demo: Dataset) -> None:
    f = SpanFilter("demo")
    summary = {s.name: s for s in store.scores_summary(f)}
    fb = summary["user_feedback"]
    assert (fb.count, fb.avg, fb.pass_rate, fb.low_share) == (10, 0.5, 0.5, 0.5)
    assert summary["relevance"].pass_rate == 1.0 and summary["relevance"].avg is None
    assert [s.name for s in store.scores_summary(f, name="relevance")] == ["relevance"]
    newest = store.scores(f, limit=3)
    assert [s.score_id for s in newest] == ["demo-fb-9", "demo-fb-8", "demo-fb-7"]
    tid = newest[0].trace_id
    assert [s.score_id for s in store.scores(SpanFilter("demo", trace_id=tid))] == ["demo-fb-9"]
    store.write_scores(newest)  # idempotent on score_id
    assert store.scores_summary(f, name="user_feedback")[0].count == 10


def test_sessions_and_users(store: Store, demo: Dataset) -> None:
    sessions = store.sessions(SpanFilter("demo"), limit=5)
    last = max(s.start_ns + s.duration_ns for s in demo.spans)  # last seen: the latest end
    newest = next(s.session_id for s in demo.spans if s.start_ns + s.duration_ns == last)
    assert sessions[0].key == newest and len(sessions) == 5
    rows = [s for s in demo.spans if s.session_id == newest]
    a = sessions[0]
    assert (a.traces, a.spans, a.first_ns, a.last_ns) == (
        len({s.trace_id for s in rows}), len(rows), min(s.start_ns for s in rows), last,
    )  # fmt: skip
    failed = ("error", "timeout", "rejected")  # failed requests: root spans, as the overview
    assert a.errors == sum(s.outcome in failed and not s.parent_span_id for s in rows)
    assert a.cost_usd == pytest.approx(sum(s.cost_usd or 0 for s in rows))
    users = {u.key: u for u in store.users(SpanFilter("demo"))}
    assert set(users) == {f"user-{k}" for k in range(7)}
    assert users["user-2"].input_tokens == sum(
        s.input_tokens or 0 for s in demo.spans if s.user_id == "user-2"
    )


@pytest.mark.slow
def test_retention(fresh_store: Store, demo: Dataset, other: Dataset) -> None:
    store = fresh_store
    cut = demo.spans[0].start_ns + 100 * MINUTE_NS
    old_demo = sum(s.start_ns < cut for s in demo.spans)
    old_other = sum(s.start_ns < cut for s in other.spans)
    assert store.delete_before("demo", cut) == old_demo
    assert store.count("other") == len(other.spans)
    assert store.delete_before(None, cut) == old_other
    assert store.count() == len(demo.spans) + len(other.spans) - old_demo - old_other
    assert store.trace("demo", demo.spans[0].trace_id) is None
    assert store.scores(SpanFilter("demo", end_ns=cut)) == []
    expect([s for s in demo.spans if s.start_ns >= cut], store.summary(SpanFilter("demo")))


def test_projects_are_isolated(store: Store, demo: Dataset, other: Dataset) -> None:
    f = SpanFilter("other")
    expect(other.spans, store.summary(f))
    assert store.count("other") == len(other.spans)
    mine = {s.trace_id for s in other.spans}
    checks = [
        [s.trace_id for g in [store.search_spans(f, limit=1000)] for s in g.items],
        [s.trace_id for s in store.scores(f)],
    ]
    assert all(set(c) <= mine for c in checks)
    assert sum(g.summary.count for g in store.breakdown(f, "service")) == len(other.spans)
    assert sum(p.summary.count for p in store.timeseries(f, 3600)) == len(other.spans)
    assert {u.key for u in store.users(f)} == {s.user_id for s in other.spans}
    assert sum(a.spans for a in store.sessions(f, limit=1000)) == len(other.spans)
    assert {s.name for s in store.scores_summary(f)} == {"user_feedback", "relevance"}
    assert store.scores_summary(f, name="user_feedback")[0].count == 3
    assert store.summary(SpanFilter("nobody")).count == 0


def test_a_trace_shared_by_two_projects(empty_store: Store) -> None:
    a = generate("a", 3).spans
    shared = a[0].trace_id
    b = [replace(s, project="b", span_id="b" + s.span_id[1:]) for s in a if s.trace_id == shared]
    b = [replace(s, start_ns=s.start_ns + 3600 * 10**9) for s in b]  # an hour later
    empty_store.write(SpanBatch(a))
    empty_store.write(SpanBatch(b))
    ta, tb = empty_store.trace("a", shared), empty_store.trace("b", shared)
    assert ta is not None and {s.project for s in ta.spans} == {"a"}
    assert tb is not None and tb.spans == sorted(b, key=lambda s: (s.start_ns, s.span_id))
    assert empty_store.delete_before("a", b[0].start_ns) == len(a)
    assert empty_store.trace("a", shared) is None
    assert empty_store.trace("b", shared) == tb


def test_a_bad_batch_changes_nothing(empty_store: Store, demo: Dataset) -> None:
    good = demo.spans[:20]
    bad = replace(demo.spans[20], duration_ns="slow")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        empty_store.write(SpanBatch([*good, bad]))
    assert empty_store.count() == 0
    assert empty_store.write(SpanBatch(good)) == 20  # and the store still writes


def test_open_ranges_are_closed_by_the_data(
    store: Store, demo: Dataset, empty_store: Store
) -> None:
    empty_store.write(generate("wide", 30, spacing_ns=1000 * 10**9).batch())
    with pytest.raises(ValidationError):  # 8 hours in 1 s steps: too many buckets
        empty_store.heatmap(SpanFilter("wide"), 1, [100.0])
    with pytest.raises(ValidationError):
        empty_store.timeseries(SpanFilter("wide", end_ns=10**20), 1)
    h = store.heatmap(SpanFilter("demo", start_ns=demo.spans[0].start_ns), 3600, [100.0])
    assert sum(map(sum, h.counts)) == len(demo.spans)
    assert h.bucket_starts_ns[0] == demo.spans[0].start_ns // (3600 * 10**9) * 3600 * 10**9
    assert store.timeseries(SpanFilter("nobody"), 1) == []
    assert store.heatmap(SpanFilter("nobody"), 1, [1.0]).counts == []
