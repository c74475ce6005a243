"""The spool's guarantees at unit level: durable records, torn tails cut, replay exactly once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.ingest.conftest import make_config
from watchkeeper.ingest import Entry, IngestService, Position, Spool
from watchkeeper.ingest._commit import GroupCommitter
from watchkeeper.ingest._spool import MAGIC
from watchkeeper.store.duckdb import DuckDBStore


def _entry(i: int, size: int = 100) -> Entry:
    return Entry("p", "protobuf", bytes([i % 256]) * size)


def _all(spool: Spool, start: Position | None = None) -> list[bytes]:
    return [r.body for r in spool.read(start or spool.checkpoint, 1 << 40)]


def test_records_round_trip_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=1000)
    spool.open()
    for i in range(30):
        spool.append([_entry(i)])
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert _all(spool) == [_entry(i).body for i in range(30)]
    assert spool.backlog_bytes() == sum(
        p.stat().st_size - len(MAGIC) for p in tmp_path.glob("*.seg")
    )
    spool.close()


def test_torn_final_record_is_truncated_and_never_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([_entry(1), _entry(2)])
    good_size = spool.end.offset
    spool.close()
    seg = next(tmp_path.glob("*.seg"))
    with seg.open("ab") as f:  # a crash mid-write: half a record after the last good one
        f.write(b"\x80\x00\x00\x00\x12\x34\x56\x78" + b"partial")
    reopened = Spool(tmp_path)
    reopened.open()
    assert reopened.truncated_bytes == 15
    assert seg.stat().st_size == good_size
    assert _all(reopened) == [_entry(1).body, _entry(2).body]
    reopened.append([_entry(3)])  # appends continue cleanly after the cut
    assert _all(reopened)[-1] == _entry(3).body
    reopened.close()


def test_corrupt_crc_in_tail_is_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([_entry(1)])
    spool.append([_entry(2)])
    spool.close()
    seg = next(tmp_path.glob("*.seg"))
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the last record's body
    seg.write_bytes(bytes(data))
    reopened = Spool(tmp_path)
    reopened.open()
    assert _all(reopened) == [_entry(1).body]
    reopened.close()


def test_checkpoint_is_atomic_and_deletes_finished_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=500)
    spool.open()
    ends = [spool.append([_entry(i)]) for i in range(20)]
    spool.set_checkpoint(ends[14])
    assert not (tmp_path / "checkpoint.tmp").exists()
    assert orjson.loads((tmp_path / "checkpoint").read_bytes()) == {
        "segment": ends[14].segment,
        "offset": ends[14].offset,
    }
    assert min(int(p.stem) for p in tmp_path.glob("*.seg")) == ends[14].segment
    spool.close()
    reopened = Spool(tmp_path, segment_bytes=500)
    reopened.open()
    assert _all(reopened) == [_entry(i).body for i in range(15, 20)]
    assert reopened.is_stored(ends[14]) and not reopened.is_stored(ends[15])
    reopened.close()


def test_group_commit_shares_fsyncs_between_concurrent_requests(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    committer = GroupCommitter(spool, group_commit_s=0.05)
    committer.start()
    futures = [committer.submit(_entry(i))[0] for i in range(200)]
    ends = [f.result(10) for f in futures]
    committer.stop()
    assert spool.commits < 20  # 200 requests, far fewer fsyncs
    assert len(_all(spool)) == 200
    assert max(ends) == spool.end
    spool.close()


def test_a_request_cancelled_while_waiting_does_not_stop_the_committer(tmp_path: Path) -> None:
    """A client that goes away while its entry waits for the fsync cancels its future; the
    thread once answered it anyway, died of InvalidStateError, and every later request waited
    for ever. Both services await the futures through asyncio, as here."""
    spool = Spool(tmp_path)
    spool.open()
    committer = GroupCommitter(spool, group_commit_s=0.05)

    async def main() -> Position:
        (gone,) = committer.submit(_entry(1))
        waiter = asyncio.ensure_future(asyncio.wrap_future(gone))
        await asyncio.sleep(0)
        waiter.cancel()  # cancels `gone` too, before the thread has taken it
        await asyncio.sleep(0)
        assert gone.cancelled()
        committer.start()
        (later,) = committer.submit(_entry(2))
        return await asyncio.wait_for(asyncio.wrap_future(later), 10)

    end = asyncio.run(main())
    committer.stop()
    assert end == spool.end
    assert len(_all(spool)) == 2  # the cancelled one was written too: replay is idempotent
    spool.close()


def test_backlog_age_and_bytes(tmp_path: Path) -> None:
    now = [1000.0]
    spool = Spool(tmp_path, clock=lambda: now[0])
    spool.open()
    assert spool.oldest_unstored_ns() is None and spool.backlog_bytes() == 0
    first = spool.append([_entry(1)])
    now[0] = 1005.0
    spool.append([_entry(2)])
    assert spool.oldest_unstored_ns() == 1000 * 10**9
    spool.set_checkpoint(first)
    assert spool.oldest_unstored_ns() == 1005 * 10**9
    spool.close()


# --- the service over a spool left by a "crashed" process ---------------------------------


def _otlp_body(n: int, seed: int) -> bytes:
    spans = [
        {
            "traceId": f"{seed:032x}",
            "spanId": f"{i + 1:016x}",
            "name": f"s{i}",
            "startTimeUnixNano": "1763900000000000000",
            "endTimeUnixNano": "1763900001000000000",
        }
        for i in range(n)
    ]
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


@pytest.mark.slow
def test_service_replays_unstored_records_exactly_once(tmp_path: Path) -> None:
    config = make_config(tmp_path, batch_max_wait_ms=10)
    spool_dir = tmp_path / "spool"
    # A previous process stored the first request, checkpointed it, then died with two more
    # spooled and a torn fourth.
    crashed = Spool(spool_dir)
    crashed.open()
    first = crashed.append([Entry("default", "json", _otlp_body(3, 1))])
    crashed.append([Entry("default", "json", _otlp_body(4, 2))])
    crashed.append([Entry("default", "json", _otlp_body(5, 3))])
    crashed.set_checkpoint(first)
    crashed.close()
    with next(spool_dir.glob("*.seg")).open("ab") as f:
        f.write(b"\x00\x10\x00\x00garbage")
    store = DuckDBStore(None)
    service = IngestService(config, store, CollectorRegistry())
    service.start()
    try:
        assert service.flush(30)
        assert store.count("default") == 9  # not the 3 already stored, nor the torn one
        result = asyncio.run(service.accept("default", _otlp_body(4, 2), "application/json", None))
        assert result.accepted == 4
        assert service.flush(30)
        assert store.count("default") == 9  # a re-sent request is idempotent in the store
    finally:
        service.stop()
    restarted = IngestService(config, store, CollectorRegistry())
    restarted.start()
    try:
        assert restarted.flush(30)
        assert restarted.backlog_bytes == 0
    finally:
        restarted.stop()
    assert store.count("default") == 9
    store.close()


@pytest.mark.slow
def test_stop_drains_everything_acknowledged(tmp_path: Path) -> None:
    config = make_config(tmp_path, batch_max_wait_ms=60_000, batch_max_spans=1_000_000)
    store = DuckDBStore(None)
    service = IngestService(config, store, CollectorRegistry())
    service.start()

    async def send() -> None:
        await asyncio.gather(
            *(
                service.accept("default", _otlp_body(10, s), "application/json", None)
                for s in range(1, 21)
            )
        )

    asyncio.run(send())
    service.stop()  # the batch wait is a minute: only the drain on stop writes these
    assert store.count("default") == 200
    assert os.path.exists(tmp_path / "spool" / "checkpoint")
    restarted = Spool(tmp_path / "spool")
    restarted.open()
    assert restarted.backlog_bytes() == 0
    restarted.close()
    store.close()
