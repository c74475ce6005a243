"""`SpooledWriter` with `write_many`: requests found waiting in the spool are written
together, and a group the store refuses goes one by one (the bad request set aside, the
others stored). A real spool on disk; the signal's store is the test's list."""

from __future__ import annotations

import time
from pathlib import Path

from tests.eventually import eventually
from watchkeeper.config import IngestConfig
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
