"""The dead letter: spool records that could not be processed or stored, set aside whole.

A record lands here when its body cannot be decoded or normalized at all, when it killed
its worker twice, or when the store refused its rows after bounded retries (a value the
store cannot keep). Setting it aside lets the checkpoint move on, so one bad record never
stops the spans acknowledged after it. Nothing is thrown away: `watchkeeper dead-letter
replay` puts the records back into the spool (once the cause is fixed), and writes are
idempotent on the span key, so a replay never doubles a span.

Layout of `<data_dir>/dead-letter/`: `records.seg`, the spool's record format after its
magic header (each record as it was accepted, its append time kept), and `index.jsonl`,
one line per record: when it was set aside, why, its project and its size.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from watchkeeper.ingest._spool import MAGIC, Entry, Record, Spool, encode_record, read_records


@dataclass(frozen=True, slots=True)
class Letter:
    """One record set aside, with why."""

    record: Record
    reason: str
    at: float  # when it was set aside (Unix seconds)


class DeadLetter:
    """Append-only file of records set aside; safe to `add` from several threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._records = directory / "records.seg"
        self._index = directory / "index.jsonl"
        self._lock = threading.Lock()
        self._count: int | None = None

    def add(self, record: Record, reason: str) -> None:
        """Set a record aside durably (fsync) with the reason it could not be kept."""
        line = orjson.dumps(
            {
                "at": time.time(),
                "reason": reason[:2000],
                "project": record.project,
                "bytes": len(record.body),
                "appended_ns": record.appended_ns,
            }
        )
        entry = Entry(record.project, record.content_type, record.body, record.flags)
        with self._lock:
            held = self._counted()
            self.directory.mkdir(parents=True, exist_ok=True)
            # The index line first: a crash between the two leaves a line without its record
            # (ignored), and the record, not yet behind the checkpoint, is set aside again.
            with self._index.open("ab") as f:
                f.write(line + b"\n")
                f.flush()
                os.fsync(f.fileno())
            with self._records.open("ab") as f:
                if f.tell() == 0:
                    f.write(MAGIC)
                f.write(encode_record(entry, record.appended_ns))
                f.flush()
                os.fsync(f.fileno())
            self._count = held + 1

    def count(self) -> int:
        """Records set aside now."""
        with self._lock:
            return self._counted()

    def _counted(self) -> int:  # caller holds the lock
        if self._count is None:
            self._count = sum(1 for _ in read_records(self._records))
        return self._count

    def letters(self) -> Iterator[Letter]:
        """Every record set aside, oldest first, with its reason."""
        try:
            lines = self._index.read_bytes().splitlines()
        except FileNotFoundError:
            return
        reasons = [orjson.loads(line) for line in lines if line.strip()]
        for record, why in zip(read_records(self._records), reasons, strict=False):
            yield Letter(record, str(why.get("reason", "")), float(why.get("at", 0.0)))

    def replay(self, spool: Spool, batch: int = 256) -> int:
        """Append every record back to an open spool (durably), then forget them; the count.

        A crash in between replays them twice on the next call: harmless, since the store
        keeps a span once whatever it is sent.
        """
        entries = [
            Entry(r.project, r.content_type, r.body, r.flags)
            for r in (letter.record for letter in self.letters())
        ]
        for i in range(0, len(entries), batch):
            spool.append(entries[i : i + batch])
        self.clear()
        return len(entries)

    def clear(self) -> None:
        """Forget every record (after a replay put them back into the spool)."""
        with self._lock:
            self._records.unlink(missing_ok=True)
            self._index.unlink(missing_ok=True)
            self._count = 0
