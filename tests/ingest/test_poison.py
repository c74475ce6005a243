"""No acknowledged request can stop span storage: extreme values, bad attributes, bad gzip,
records the store refuses (the dead letter and its replay), and the lag budget.

Every test sends through the real receiver (uvicorn on loopback) into a real DuckDB store,
then checks that a good request sent *after* the bad ones is stored: the property the
reliability probe found broken (one span in year 2300 stalled every write behind it).
"""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import CollectorRegistry

from tests.ingest._otlp import to_protobuf
from tests.ingest.conftest import GatedStore, Receiver, make_config
from watchkeeper.errors import Overloaded, StoreDataError
from watchkeeper.ingest import DEFAULT_STEPS, DeadLetter, Draft, IngestService
from watchkeeper.ingest._admission import WritePace
from watchkeeper.ingest._service import MAX_SPANS_PER_RECORD
from watchkeeper.store import SpanFilter
from watchkeeper.store.duckdb import DuckDBStore

NOW = 1_764_000_000_000_000_000  # 2025-11-24
YEAR_2300 = 10_500_000_000_000_000_000
INT64_MAX = (1 << 63) - 1
#: Times the probe used, and the edges around int64 and uint64.
TIMES = (1, 2, 1_000, NOW, NOW + 1, 5 * 10**18, 1 << 62, INT64_MAX, 1 << 63, YEAR_2300,
         (1 << 64) - 2, (1 << 64) - 1)  # fmt: skip
#: Integers for token counts, status codes, costs and plain attributes.
INTS = (0, -1, 7, 200, 599, 1 << 31, 1 << 32, 1 << 53, 1 << 62, INT64_MAX, -(1 << 63),
        1 << 63, 1 << 64, 1 << 70, 10**30)  # fmt: skip
NUMERIC_KEYS = (
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.reasoning_tokens",
    "http.response.status_code", "gen_ai.usage.cost", "x.count",
)  # fmt: skip
JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(i: int, start: int, end: int, attrs: list[dict[str, Any]] | None = None) -> Any:
    return {
        "traceId": f"{i + 1:032x}",
        "spanId": f"{i + 1:016x}",
        "name": f"span {i}",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.request.model", "gpt-4o-mini"),
            *(attrs or []),
        ],
    }


def _doc(spans: list[Any]) -> dict[str, Any]:
    resource = {"attributes": [_attr("service.name", "poison-test")]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}


def _accepted(response: httpx.Response, total: int) -> int:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("application/json"):
        rejected = int(response.json().get("partialSuccess", {}).get("rejectedSpans", 0))
    else:
        answer = ExportTraceServiceResponse.FromString(response.content)
        rejected = answer.partial_success.rejected_spans
    return total - rejected


def _probe(client: httpx.Client, url: str, i: int) -> None:
    body = orjson.dumps(_doc([_span(i, NOW, NOW + 1_000_000)]))
    assert client.post(f"{url}/v1/traces", content=body, headers=JSON).status_code == 200


def _assert_queries_answer(rec: Receiver, stored: int) -> None:
    """Every kind of query answers over the stored extremes (the rollup path included)."""
    store = rec.store
    assert store.summary(SpanFilter("default")).count == stored
    everything = SpanFilter("default", start_ns=0, end_ns=INT64_MAX)  # rollup-eligible range
    for percentiles in (True, False):
        assert store.summary(everything, percentiles=percentiles).count == stored
        groups = store.breakdown(everything, "model", percentiles=percentiles)
        assert sum(g.summary.count for g in groups) == stored
    assert store.breakdown(everything, "user", percentiles=False) is not None
    store.search_spans(SpanFilter("default"), limit=50)


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_fuzzed_extremes_never_stall_storage(
    make_receiver: Any, encoding: str, tmp_path: Path
) -> None:
    rec = make_receiver()
    rng = random.Random(f"poison-{encoding}")
    accepted = 0
    with httpx.Client(timeout=30) as client:
        for request in range(12):
            spans = []
            for j in range(20):
                a, b = rng.choice(TIMES), rng.choice(TIMES)
                start, end = (min(a, b), max(a, b)) if rng.random() < 0.8 else (a, b)
                ints = (
                    INTS if encoding == "json" else [v for v in INTS if -(1 << 63) <= v < 1 << 63]
                )
                attrs = [_attr(k, rng.choice(ints)) for k in rng.sample(NUMERIC_KEYS, 4)]
                if rng.random() < 0.3:
                    attrs.append(_attr("gen_ai.usage.cost", rng.choice([1e308, -1e308, 1e-300])))
                spans.append(_span(request * 100 + j, start, end, attrs))
            doc = _doc(spans)
            if encoding == "json":
                r = client.post(f"{rec.url}/v1/traces", content=orjson.dumps(doc), headers=JSON)
            else:
                r = client.post(f"{rec.url}/v1/traces", content=to_protobuf(doc), headers=PROTOBUF)
            accepted += _accepted(r, len(spans))
        # the probe's request: the six 1 ns spans whose durations sum past int64, and more
        six = [_span(5000 + i, 1, NOW) for i in range(6)]
        two = [_span(5100 + i, 1, 5 * 10**18 + 1) for i in range(2)]
        body = orjson.dumps(_doc(six + two))
        accepted += _accepted(client.post(f"{rec.url}/v1/traces", content=body, headers=JSON), 8)
        _probe(client, rec.url, 9000)
    assert rec.ingest.flush(120), "a request acknowledged after the extremes was not stored"
    assert rec.ingest.dead_letter.count() == 0  # every extreme was handled before the store
    assert rec.store.count("default") == accepted + 1
    _assert_queries_answer(rec, accepted + 1)


@pytest.mark.slow
def test_out_of_range_times_are_rejected_per_span_with_a_reason(make_receiver: Any) -> None:
    rec = make_receiver()
    spans = [
        _span(0, YEAR_2300, YEAR_2300 + 1),
        _span(1, (1 << 64) - 2, (1 << 64) - 2),
        _span(2, 1, YEAR_2300),
        _span(3, NOW, NOW + 5),
    ]
    r = httpx.post(f"{rec.url}/v1/traces", content=orjson.dumps(_doc(spans)), headers=JSON)
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 3
    assert "out of range" in partial["errorMessage"] and "2262" in partial["errorMessage"]
    assert rec.ingest.flush(30)
    assert rec.store.count("default") == 1


@pytest.mark.slow
def test_an_int_attribute_past_int64_costs_that_attribute_only(make_receiver: Any) -> None:
    rec = make_receiver()
    big = {"key": "huge", "value": {"intValue": "1180591620717411303424"}}  # 2^70
    spans = [_span(i, NOW, NOW + 1000, [big, _attr("user.id", f"u{i}")]) for i in range(10)]
    r = httpx.post(f"{rec.url}/v1/traces", content=orjson.dumps(_doc(spans)), headers=JSON)
    partial = r.json()["partialSuccess"]
    assert int(partial.get("rejectedSpans", 0)) == 0  # a warning, as OTLP provides
    assert "10 attribute values dropped" in partial["errorMessage"]
    assert "'huge'" in partial["errorMessage"]
    assert rec.ingest.flush(30)
    assert rec.store.count("default") == 10
    detail = rec.store.trace("default", f"{1:032x}")
    assert detail is not None
    attributes = orjson.loads(next(iter(detail.payloads.values())).attributes)
    assert "huge" not in attributes and attributes["gen_ai.request.model"] == "gpt-4o-mini"


@pytest.mark.slow
def test_every_member_of_a_multi_member_gzip_body_is_read(make_receiver: Any) -> None:
    rec = make_receiver()
    # Concatenated protobuf messages merge: two gzip members, each a whole request, are
    # one request of 7 spans when both are read (the first alone is a valid 3-span one).
    first = to_protobuf(_doc([_span(i, NOW, NOW + 1) for i in range(3)]))
    second = to_protobuf(_doc([_span(10 + i, NOW, NOW + 1) for i in range(4)]))
    gzipped = {**PROTOBUF, "content-encoding": "gzip"}
    body = gzip.compress(first) + gzip.compress(second)
    r = httpx.post(f"{rec.url}/v1/traces", content=body, headers=gzipped)
    assert r.status_code == 200, r.text
    assert rec.ingest.flush(30)
    assert rec.store.count("default") == 7
    garbage = gzip.compress(first) + b"not gzip at all"
    r = httpx.post(
        f"{rec.url}/v1/traces", content=garbage, headers={**JSON, **{"content-encoding": "gzip"}}
    )
    assert r.status_code == 400 and "gzip" in r.json()["message"]


# --- the dead letter ----------------------------------------------------------------------


def overflow_status(d: Draft) -> None:
    """A deployment's buggy step: writes a status code no INTEGER column can hold."""
    if d.row.name.startswith("bad"):
        d.row.http_status_code = 1 << 40


def _named(names: list[str], seed: int) -> bytes:
    spans = [_span(seed * 100 + i, NOW, NOW + 1000) | {"name": n} for i, n in enumerate(names)]
    return orjson.dumps(_doc(spans))


def _send(service: IngestService, *bodies: bytes) -> None:
    async def go() -> None:
        for body in bodies:
            await service.accept("default", body, "application/json", None)

    asyncio.run(go())


@pytest.mark.slow
def test_a_record_the_store_refuses_is_set_aside_and_replayed(tmp_path: Path) -> None:
    config = make_config(tmp_path, batch_max_wait_ms=50, workers=0)
    registry = CollectorRegistry()
    store = DuckDBStore(tmp_path / "spans.duckdb")
    service = IngestService(
        config, store, registry, steps=(*DEFAULT_STEPS, overflow_status), tune_gc=False
    )
    service.start()
    try:
        _send(
            service,
            _named(["good 1", "good 2"], 1),
            _named(["bad", "innocent"], 2),  # the store refuses this record's rows
            _named(["good 3"], 3),
        )
        assert service.flush(60), "the refused record stalled the writer"
        assert store.count("default") == 3
        assert service.dead_letter.count() == 1
        assert service.problems() == []  # the writer is not failing any more
        held = registry.get_sample_value("watchkeeper_ingest_dead_letter_held_records")
        assert held == 1
        refused = registry.get_sample_value(
            "watchkeeper_ingest_dead_letter_records_total", {"reason": "store_refused"}
        )
        assert refused == 1
        assert registry.get_sample_value("watchkeeper_ingest_dead_letter_spans_total") == 2
    finally:
        service.stop()
        store.close()

    cli = [sys.executable, "-m", "watchkeeper", "dead-letter"]
    listed = subprocess.run(
        [*cli, "list", "--data-dir", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert "store_refused" in listed.stdout and "1 records set aside" in listed.stderr

    # the cause fixed (the buggy step removed), the records go back and are stored
    replayed = subprocess.run(
        [*cli, "replay", "--data-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert replayed.returncode == 0, replayed.stderr
    store = DuckDBStore(tmp_path / "spans.duckdb")
    service = IngestService(config, store, CollectorRegistry(), tune_gc=False)
    service.start()
    try:
        assert service.flush(60)
        assert store.count("default") == 5
        assert service.dead_letter.count() == 0
    finally:
        service.stop()
        store.close()


def test_replay_is_refused_while_a_server_holds_the_spool(tmp_path: Path) -> None:
    config = make_config(tmp_path, workers=0)
    service = IngestService(config, DuckDBStore(None), CollectorRegistry(), tune_gc=False)
    service.start()
    try:
        replayed = subprocess.run(
            [sys.executable, "-m", "watchkeeper", "dead-letter", "replay", "--data-dir",
             str(tmp_path)],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert replayed.returncode == 2
        assert "in use by another Watchkeeper process" in replayed.stderr
    finally:
        service.stop()


def test_a_lost_record_is_set_aside_too(tmp_path: Path) -> None:
    """A record that cannot be decoded in the spool (bytes changed on disk) is kept aside."""
    config = make_config(tmp_path, batch_max_wait_ms=20, workers=0)
    store = DuckDBStore(None)
    dead = DeadLetter(tmp_path / "dead-letter")
    service = IngestService(config, store, CollectorRegistry(), tune_gc=False)
    service.start()
    try:

        async def go() -> None:
            await service.accept("default", _named(["a"], 1), "application/json", None)

        asyncio.run(go())
        assert service.flush(30)
    finally:
        service.stop()
    # what the processor does with a record it cannot decode: set it aside, not skip it
    from watchkeeper.ingest._spool import Entry, Spool

    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.append([Entry("default", "json", b"{not json")])
    spool.close()
    service = IngestService(config, store, CollectorRegistry(), tune_gc=False)
    service.start()
    try:
        _send(service, _named(["after"], 2))
        assert service.flush(30)
    finally:
        service.stop()
    assert store.count("default") == 2
    letters = list(dead.letters())
    assert len(letters) == 1 and letters[0].reason.startswith("undecodable_in_spool")
    assert letters[0].record.body == b"{not json"


# --- the lag budget -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_lag_budget_turns_into_retryable_503s(make_receiver: Any) -> None:
    store = GatedStore()
    rec = make_receiver(store=store, lag_budget_s=0.5, batch_max_wait_ms=10)
    body = orjson.dumps(_doc([_span(0, NOW, NOW + 1)]))
    try:
        assert httpx.post(f"{rec.url}/v1/traces", content=body, headers=JSON).status_code == 200
        time.sleep(0.8)  # the writer is held: the oldest record grows older than the budget
        r = httpx.post(f"{rec.url}/v1/traces", content=body, headers=JSON)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "lag budget" in r.json()["message"]
        assert rec.metric("watchkeeper_ingest_queue_drops_total", {"queue": "lag_budget"}) >= 1
    finally:
        store.gate.set()
    assert rec.ingest.flush(30)
    time.sleep(0.3)  # the admission reads the backlog's age at most every 0.2 s
    assert httpx.post(f"{rec.url}/v1/traces", content=body, headers=JSON).status_code == 200


def test_the_writers_pace_counts_a_stall_for_as_long_as_it_lasted() -> None:
    pace = WritePace(16)
    assert pace.rate() == 0.0  # unknown until a batch is written backlogged
    for _ in range(12):
        pace.add(1_000_000, 0.1)
    assert pace.rate() == pytest.approx(10_000_000)
    pace.add(1_000_000, 3.0)  # a checkpoint
    for _ in range(3):
        pace.add(1_000_000, 0.1)
    # 16 MB in 4.5 s, not ~10 MB/s again three batches later
    assert pace.rate() == pytest.approx(16_000_000 / 4.5)
    for _ in range(16):  # the stall leaves the window
        pace.add(1_000_000, 0.1)
    assert pace.rate() == pytest.approx(10_000_000)


def test_accept_refuses_over_the_budget_before_spooling(tmp_path: Path) -> None:
    now = [5_000.0]
    store = GatedStore()
    service = IngestService(
        make_config(tmp_path, lag_budget_s=2, workers=0),
        store,  # type: ignore[arg-type]
        CollectorRegistry(),
        clock=lambda: now[0],
        tune_gc=False,
    )
    service.start()
    try:
        _send(service, _named(["first"], 1))
        end = service.spool.end
        now[0] += 3
        time.sleep(0.25)
        with pytest.raises(Overloaded, match="lag budget"):
            _send(service, _named(["second"], 2))
        assert service.spool.end == end  # nothing spooled for the refused request
    finally:
        store.gate.set()
        service.stop()


# --- slow senders -------------------------------------------------------------------------


def _trickle(port: int) -> socket.socket:
    """A sender that sends its headers and one byte of a 1,000-byte body, then stalls."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    return sock


@pytest.mark.slow
def test_slow_senders_hold_no_slot_and_are_cut_off(make_receiver: Any) -> None:
    rec = make_receiver(body_timeout_s=2.0)
    port = int(rec.url.rsplit(":", 1)[1])
    slow = [_trickle(port) for _ in range(80)]  # more than the decode slots (64)
    try:
        time.sleep(0.3)
        body = orjson.dumps(_doc([_span(0, NOW, NOW + 1)]))
        with httpx.Client(timeout=10) as client:
            codes = [
                client.post(f"{rec.url}/v1/traces", content=body, headers=JSON).status_code
                for _ in range(12)
            ]
        assert codes == [200] * 12
        answers = []
        for sock in slow:  # cut off after body_timeout_s with a 408 that says why
            sock.settimeout(10)
            answers.append(sock.recv(4096).split(b"\r\n", 1)[0])
        assert set(answers) == {b"HTTP/1.1 408 Request Timeout"}
    finally:
        for sock in slow:
            sock.close()
    assert rec.metric("watchkeeper_ingest_slow_clients_total") == 80
    assert rec.metric("watchkeeper_ingest_requests_total", {"code": "408"}) == 80


@pytest.mark.slow
def test_bodies_arriving_at_once_are_bounded_by_bytes(make_receiver: Any) -> None:
    rec = make_receiver(receive_budget_bytes=4096)
    small = orjson.dumps(_doc([_span(0, NOW, NOW + 1)]))
    big = orjson.dumps(_doc([_span(i, NOW, NOW + 1) for i in range(40)]))
    assert len(small) < 4096 < len(big)
    r = httpx.post(f"{rec.url}/v1/traces", content=big, headers=JSON)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert rec.metric("watchkeeper_ingest_queue_drops_total", {"queue": "receive_budget"}) == 1
    # the budget is given back: a body that fits is taken, again and again
    for _ in range(3):
        assert httpx.post(f"{rec.url}/v1/traces", content=small, headers=JSON).status_code == 200


@pytest.mark.slow
def test_a_huge_request_is_spooled_as_bounded_records(make_receiver: Any) -> None:
    store = GatedStore()  # holds the writer, so the records are still in the spool
    rec = make_receiver(store=store, lag_budget_s=0)
    n = 2 * MAX_SPANS_PER_RECORD + 10
    doc = _doc([_span(i, NOW, NOW + 1) for i in range(n)])
    try:
        r = httpx.post(f"{rec.url}/v1/traces", content=to_protobuf(doc), headers=PROTOBUF)
        assert _accepted(r, n) == n
        spool = rec.ingest.spool
        sizes = [
            len(ExportTraceServiceRequest.FromString(r.body).resource_spans[0].scope_spans[0].spans)
            for r in spool.read(spool.checkpoint, 1 << 30)
        ]
        assert sizes == [MAX_SPANS_PER_RECORD, MAX_SPANS_PER_RECORD, 10]
    finally:
        store.gate.set()
    assert rec.ingest.flush(60)
    assert rec.store.count("default") == n


class SickStore:
    """A real DuckDB store that, for a while, refuses every write as if for its rows: what a
    database in trouble can look like (DuckDB invalidated by an out-of-memory checkpoint)."""

    def __init__(self, refusals: int) -> None:
        self.inner = DuckDBStore(None)
        self.refusals = refusals

    def write(self, batch: Any) -> int:
        """Refuse while refusals remain, then write."""
        if self.refusals:
            self.refusals -= 1
            raise StoreDataError("span store cannot keep these rows: FATAL (simulated)")
        return int(self.inner.write(batch))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.slow
def test_a_store_that_refuses_every_record_sets_nothing_aside(tmp_path: Path) -> None:
    store = SickStore(refusals=25)  # more than the attempts and halvings of one batch
    config = make_config(tmp_path, batch_max_wait_ms=1000, workers=0)  # all in one batch
    service = IngestService(config, store, CollectorRegistry(), tune_gc=False)  # type: ignore[arg-type]
    service.start()
    try:
        _send(service, *(_named([f"r{i} a", f"r{i} b"], i) for i in range(1, 5)))
        assert service.flush(120)
    finally:
        service.stop()
    assert service.dead_letter.count() == 0
    assert store.inner.count("default") == 8
