"""The durable spool: accepted OTLP bodies, appended to segment files before we acknowledge.

Layout of `<data_dir>/spool/`: segment files `<n:020d>.seg`, each a magic header then records;
a record is `<u32 payload length><u32 CRC32 of payload>` then the payload
`<i64 appended_ns><u16 project length><u16 content type length><u8 flags> project content_type
body`; flag bit 0 says the resource may override the project (auth was off).
`checkpoint` names the position (segment, offset) up to which records are in the store; it is
replaced atomically (temp file, fsync, rename, fsync of the directory).

On open, the last segment is scanned: a torn final record (a crash mid-write) fails its
length or CRC check and is truncated away. Records were acknowledged only after fsync, so
what is truncated was never acknowledged. Segments wholly behind the checkpoint are deleted.

Thread model: one committer thread appends (`append`), one reader iterates (`read`), the
store writer moves the checkpoint; shared positions are guarded by one lock. One process
at a time: `open` takes an exclusive lock on `<spool>/lock` (released when the process
ends, however it ends), so a second server or a replay cannot append beside a running one.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from watchkeeper.errors import DataDirError

MAGIC = b"WKSPOOL1"
_HEADER = struct.Struct("<II")
_META = struct.Struct("<qHHB")
FLAG_PROJECT_FROM_RESOURCE = 1
_MAX_RECORD = 1 << 31  # a length beyond this can only be garbage


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the spool: segment number and byte offset in it."""

    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    """One spooled request."""

    end: Position  # where the next record starts: checkpoint here once this one is stored
    project: str
    content_type: str
    body: bytes
    appended_ns: int
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """What the committer appends: one accepted request."""

    project: str
    content_type: str
    body: bytes
    flags: int = 0


def encode_record(entry: Entry, appended_ns: int) -> bytes:
    """The bytes of one record, header included (pure)."""
    p, ct = entry.project.encode(), entry.content_type.encode()
    meta = _META.pack(appended_ns, len(p), len(ct), entry.flags)
    payload = b"".join((meta, p, ct, entry.body))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes, end: Position) -> Record:
    appended_ns, plen, clen, flags = _META.unpack_from(payload)
    start = _META.size
    project = payload[start : start + plen].decode()
    ctype = payload[start + plen : start + plen + clen].decode()
    return Record(end, project, ctype, payload[start + plen + clen :], appended_ns, flags)


def _read_record(f: BinaryIO, segment: int, offset: int) -> Record | None:
    """The record at `offset` of an open segment, or None if it is missing, torn or corrupt."""
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    length, crc = _HEADER.unpack(header)
    if length < _META.size or length > _MAX_RECORD:
        return None
    payload = f.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None
    return _decode_payload(payload, Position(segment, offset + _HEADER.size + length))


def read_records(path: Path) -> Iterator[Record]:
    """Every whole record of a segment file, in order (none when it is missing)."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        if f.read(len(MAGIC)) != MAGIC:
            return
        offset = len(MAGIC)
        while (rec := _read_record(f, 0, offset)) is not None:
            offset = rec.end.offset
            yield rec


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only segment files with a checkpoint; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}  # committed size of every live segment
        self._checkpoint = Position(1, len(MAGIC))
        self._file: BinaryIO | None = None
        self._lock_file: BinaryIO | None = None
        self.truncated_bytes = 0  # torn tail removed at open (for tests and logs)
        self.commits = 0  # fsynced appends: requests / commits is the group-commit factor
        self.committed = threading.Condition(self._lock)

    # --- open and recovery ----------------------------------------------------------------

    def open(self) -> None:
        """Lock the spool, load the checkpoint, recover the last segment, drop stored segments."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._checkpoint = self._load_checkpoint()
        numbers = sorted(int(p.stem) for p in self.directory.glob("*.seg") if p.stem.isdigit())
        for n in numbers:
            if n < self._checkpoint.segment:
                self._path(n).unlink(missing_ok=True)
            else:
                self._sizes[n] = self._path(n).stat().st_size
        if not self._sizes:
            self._sizes[self._checkpoint.segment] = 0
        last = max(self._sizes)
        self._sizes[last] = self._recover(last)
        self._file = self._path(last).open("r+b")
        self._file.seek(self._sizes[last])

    def _take_lock(self) -> None:
        f = (self.directory / "lock").open("a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise DataDirError(
                f"the spool {self.directory} is in use by another Watchkeeper process: "
                "stop it first (one server per data directory)"
            ) from None
        self._lock_file = f

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:020d}.seg"

    def _load_checkpoint(self) -> Position:
        path = self.directory / "checkpoint"
        try:
            doc = orjson.loads(path.read_bytes())
            return Position(int(doc["segment"]), int(doc["offset"]))
        except FileNotFoundError:
            return Position(1, len(MAGIC))

    def _recover(self, segment: int) -> int:
        """Scan a segment, truncate after its last whole record; return its valid size."""
        path = self._path(segment)
        with path.open("a+b") as f:
            f.seek(0)
            if f.read(len(MAGIC)) != MAGIC:
                f.truncate(0)
                f.write(MAGIC)
                f.flush()
                os.fsync(f.fileno())
                _fsync_dir(self.directory)
                return len(MAGIC)
            offset = len(MAGIC)
            while (rec := _read_record(f, segment, offset)) is not None:
                offset = rec.end.offset
            size = f.seek(0, os.SEEK_END)
            if size > offset:
                self.truncated_bytes += size - offset
                f.truncate(offset)
                os.fsync(f.fileno())
        return offset

    # --- appending (one committer thread) -------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> Position:
        """Write records and fsync once (group commit); return the end position of the last."""
        assert self._file is not None, "Spool.open() first"
        now_ns = int(self._clock() * 1e9)
        with self._lock:
            segment = max(self._sizes)
            size = self._sizes[segment]
        if size >= self._segment_bytes:
            segment, size = self._roll(segment)
        data = b"".join(encode_record(e, now_ns) for e in entries)
        try:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            # Cut a partial write away so later records do not follow garbage.
            self._file.seek(size)
            self._file.truncate(size)
            raise
        with self._lock:
            self._sizes[segment] = size + len(data)
            self.commits += 1
            self.committed.notify_all()
        return Position(segment, size + len(data))

    def _roll(self, segment: int) -> tuple[int, int]:
        assert self._file is not None
        self._file.close()
        new = segment + 1
        f = self._path(new).open("w+b")
        f.write(MAGIC)
        f.flush()
        os.fsync(f.fileno())
        _fsync_dir(self.directory)
        self._file = f
        with self._lock:
            self._sizes[new] = len(MAGIC)
        return new, len(MAGIC)

    # --- reading (one reader thread) ------------------------------------------------------

    @property
    def end(self) -> Position:
        """Position after the last committed (fsynced) record."""
        with self._lock:
            last = max(self._sizes)
            return Position(last, self._sizes[last])

    @property
    def checkpoint(self) -> Position:
        """Position up to which records are in the store."""
        with self._lock:
            return self._checkpoint

    def _next_start(self, pos: Position) -> Position | None:
        """Where the record at or after `pos` starts, or None when nothing is committed yet."""
        with self._lock:
            size = self._sizes.get(pos.segment)
            if size is not None and pos.offset < size:
                return pos
            later = [n for n in self._sizes if n > pos.segment]
        return Position(min(later), len(MAGIC)) if later else None

    def read(self, start: Position, max_bytes: int) -> Iterator[Record]:
        """Committed records from `start`, about `max_bytes` of them at most."""
        read = 0
        pos = self._next_start(start)
        while pos is not None and read < max_bytes:
            with self._path(pos.segment).open("rb") as f:
                f.seek(pos.offset)
                with self._lock:
                    size = self._sizes.get(pos.segment, 0)
                while pos.offset < size and read < max_bytes:
                    rec = _read_record(f, pos.segment, pos.offset)
                    if rec is None:
                        raise OSError(f"spool segment {pos.segment} is corrupt at {pos.offset}")
                    read += rec.end.offset - pos.offset
                    pos = rec.end
                    yield rec
            pos = self._next_start(pos) if read < max_bytes else None

    def wait_for(self, pos: Position, timeout: float) -> bool:
        """Block until something is committed after `pos` (True) or `timeout` passes."""
        with self.committed:
            return self.committed.wait_for(lambda: self._after(pos), timeout)

    def has_after(self, pos: Position) -> bool:
        """True when a committed record starts at or after `pos`."""
        with self._lock:
            return self._after(pos)

    def is_stored(self, target: Position) -> bool:
        """True when every committed record before `target` is behind the checkpoint."""
        start = self._next_start(self.checkpoint)
        return start is None or start >= target

    def _after(self, pos: Position) -> bool:  # caller holds the lock
        last = max(self._sizes)
        return last > pos.segment or self._sizes[last] > pos.offset

    # --- checkpoint (the store writer) ----------------------------------------------------

    def set_checkpoint(self, pos: Position) -> None:
        """Record durably that everything before `pos` is stored; delete finished segments."""
        tmp = self.directory / "checkpoint.tmp"
        with tmp.open("wb") as f:
            f.write(orjson.dumps({"segment": pos.segment, "offset": pos.offset}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / "checkpoint")
        _fsync_dir(self.directory)
        with self._lock:
            self._checkpoint = pos
            done = [n for n in self._sizes if n < pos.segment]
            for n in done:
                del self._sizes[n]
        for n in done:
            self._path(n).unlink(missing_ok=True)

    # --- backlog --------------------------------------------------------------------------

    def backlog_bytes(self) -> int:
        """Bytes committed but not yet stored."""
        with self._lock:
            cp = self._checkpoint
            total = 0
            for n, size in self._sizes.items():
                if n > cp.segment:
                    total += size - len(MAGIC)
                elif n == cp.segment:
                    total += max(size - cp.offset, 0)
        return total

    def oldest_unstored_ns(self) -> int | None:
        """When the oldest record not yet stored was appended, or None when all are stored."""
        pos = self._next_start(self.checkpoint)
        if pos is None:
            return None
        try:
            with self._path(pos.segment).open("rb") as f:
                f.seek(pos.offset)
                head = f.read(_HEADER.size + _META.size)
        except FileNotFoundError:
            return None
        if len(head) < _HEADER.size + _META.size:
            return None
        appended_ns: int = _META.unpack_from(head, _HEADER.size)[0]
        return appended_ns

    def close(self) -> None:
        """Close the append file and release the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_file is not None:
            self._lock_file.close()  # closing the last descriptor releases the flock
            self._lock_file = None
