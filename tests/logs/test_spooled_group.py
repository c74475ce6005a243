"""`SpooledWriter` with `write_many`: requests found waiting in the spool are written
together, and a group the store refuses goes one by one (the bad request set aside, the
others stored); its admission refuses past the lag budget and the backlog's bytes. A real
spool on disk; the signal's store is the test's list."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.eventually import eventually
from watchkeeper.config import IngestConfig
from watchkeeper.errors import Overloaded
from watchkeeper.ingest._spool import Entry, Record
from watchkeeper.ingest._spooled import SpooledWriter


class ListStore:
    """Keeps what it is given; refuses any batch holding b"bad" (for its content)."""

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []

    def write_one(self, _rec: Record, body: bytes) -> None:
        self._take([body])

    def write_many(self, group: list[tuple[Record, bytes]]) -> None:
        self._take([body for _, body in group])

    def _take(self, bodies: list[bytes]) -> None:
        if any(b"bad" in b for b in bodies):
            raise ValueError("refused for its content")  # not a StoreError: for its data
        self.writes.append(bodies)


def _writer(tmp_path: Path, store: ListStore, linger_s: float = 0.0) -> SpooledWriter[bytes]:
    return SpooledWriter(
        "log",
        tmp_path,
        IngestConfig(),
        decode=lambda rec: rec.body,
        write=store.write_one,
        write_many=store.write_many,
        group=4,
        linger_s=linger_s,
    )


def _spooled(tmp_path: Path, bodies: list[bytes]) -> None:
    """Requests left in the spool by a server that stopped before writing them."""
    writer = _writer(tmp_path, ListStore())
    writer.spool.open()
    writer.spool.append([Entry("p", "protobuf", b) for b in bodies])
    writer.spool.close()


def test_requests_waiting_are_written_together(tmp_path: Path) -> None:
    _spooled(tmp_path, [f"request {i}".encode() for i in range(6)])
    store = ListStore()
    writer = _writer(tmp_path, store)
    writer.start()
    assert writer.flush(30)
    writer.stop()
    assert store.writes == [
        [b"request 0", b"request 1", b"request 2", b"request 3"],
        [b"request 4", b"request 5"],
    ]


def test_a_refused_group_is_written_one_by_one(tmp_path: Path) -> None:
    _spooled(tmp_path, [b"one", b"bad two", b"three"])
    store = ListStore()
    writer = _writer(tmp_path, store)
    writer.start()
    assert writer.flush(30)
    writer.stop()
    assert store.writes == [[b"one"], [b"three"]]
    assert writer.dead_letter.count() == 1
    assert [letter.record.body for letter in writer.dead_letter.letters()] == [b"bad two"]


def test_a_lingering_writer_writes_what_arrives_meanwhile_together(tmp_path: Path) -> None:
    store = ListStore()
    writer = _writer(tmp_path, store, linger_s=600)  # far longer than the test: once it has
    writer.start()  # written, it writes again only when a flush hurries it
    writer.spool.append([Entry("p", "protobuf", b"first")])
    assert eventually(lambda: store.writes == [[b"first"]], 30)
    writer.spool.append([Entry("p", "protobuf", b"second")])
    time.sleep(0.3)  # a writer that did not linger would have written it alone by now
    writer.spool.append([Entry("p", "protobuf", b"third")])
    assert writer.flush(30)
    writer.stop()
    assert store.writes == [[b"first"], [b"second", b"third"]]


def _held_writer(
    tmp_path: Path, cfg: IngestConfig, clock: Callable[[], float]
) -> tuple[SpooledWriter[bytes], threading.Event]:
    """A started log writer whose store holds each write until the event is set, with one
    request spooled (and held)."""
    gate = threading.Event()

    def held(_rec: Record, _body: bytes) -> None:
        gate.wait(30)

    writer = SpooledWriter(
        "log", tmp_path, cfg, decode=lambda rec: rec.body, write=held, clock=clock
    )
    writer.start()
    writer.admit()  # nothing behind yet
    asyncio.run(writer.append(Entry("p", "protobuf", b"a request of some bytes")))
    return writer, gate


def test_admission_refuses_once_the_store_is_past_the_lag_budget(tmp_path: Path) -> None:
    now = [1_000.0]
    writer, gate = _held_writer(tmp_path, IngestConfig(lag_budget_s=1.0), lambda: now[0])
    try:
        writer.admit()  # spooled just now: within the budget
        now[0] += 2.5
        with pytest.raises(Overloaded, match=r"the log store is 2\.5 s behind, over the 1 s"):
            writer.admit()
    finally:
        gate.set()
        assert writer.flush(30)
    writer.admit()  # written: nothing behind
    writer.stop()
    with pytest.raises(Overloaded, match="not running"):
        writer.admit()


def test_admission_refuses_past_the_backlog_bytes(tmp_path: Path) -> None:
    writer, gate = _held_writer(tmp_path, IngestConfig(spool_max_backlog_bytes=8), time.time)
    try:
        with pytest.raises(Overloaded, match="log ingest backlog is full") as refused:
            writer.admit()
        assert refused.value.retry_after == 2.0
    finally:
        gate.set()
        assert writer.flush(30)
        writer.stop()


def test_upkeep_runs_while_idle_and_its_failure_stops_no_write(tmp_path: Path) -> None:
    store, calls = ListStore(), []

    def upkeep() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("upkeep failed")  # logged; the writer goes on

    writer = SpooledWriter(
        "log", tmp_path, IngestConfig(), decode=lambda rec: rec.body, write=store.write_one,
        idle=upkeep,
    )  # fmt: skip
    writer.start()
    try:
        eventually(lambda: len(calls) >= 3, 10.0)
        asyncio.run(writer.append(Entry("p", "protobuf", b"one")))
        assert writer.flush(10.0) and store.writes == [[b"one"]]
        before = len(calls)
        eventually(lambda: len(calls) > before, 10.0)
    finally:
        writer.stop()
