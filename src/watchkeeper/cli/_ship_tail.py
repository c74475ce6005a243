"""Where `logs ship` reads: a file followed like `tail -F` (appends, rotation by rename,
truncation) from a saved position, or standard input; and the state file that keeps the
position the server acknowledged.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# A line longer than this without a newline is cut here (the server cuts bodies at 1 MiB).
MAX_LINE_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Position:
    """A place in a file: its identity (inode, device), the byte offset and the line number
    of the line that ends there."""

    inode: int
    device: int
    offset: int
    line: int


@dataclass(frozen=True)
class RawLine:
    """A line as read, and the position just after it (None on standard input)."""

    text: str
    number: int
    end: Position | None


@dataclass(frozen=True)
class State:
    """What the state file keeps: the acknowledged position, and the batch being sent (its
    last position and its observed time, so that a resend after a crash says the same)."""

    acked: Position | None = None
    pending: Position | None = None
    pending_observed_ns: int = 0


def load_state(path: Path) -> State:
    """The saved state, or an empty one when there is none."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return State()
    except (OSError, ValueError) as exc:
        raise ValueError(_unreadable(path, exc)) from None

    def position(value: object) -> Position | None:
        return Position(**value) if isinstance(value, dict) else None

    try:
        return State(
            position(doc.get("acked")),
            position(doc.get("pending")),
            int(doc.get("pending_observed_ns", 0)),
        )
    except (AttributeError, TypeError, ValueError) as exc:  # JSON, but not a state
        raise ValueError(_unreadable(path, exc)) from None


def _unreadable(path: Path, exc: Exception) -> str:
    return (
        f"the state file {path} cannot be read ({exc}): remove it to start from the "
        "beginning of the file"
    )


def save_state(path: Path, state: State) -> None:
    """Write the state atomically (a crash leaves the old or the new one, never half)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(asdict(state), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Source(Protocol):
    """Lines to ship."""

    done: bool

    def take(self, limit: int, wait_s: float) -> list[RawLine]:
        """Up to `limit` lines, waiting at most `wait_s` for the first one."""
        ...


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_ino, st.st_dev


def find_by_identity(directory: Path, inode: int, device: int) -> Path | None:
    """The file of `directory` with this identity (a rotated file keeps it when renamed)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return None
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if _identity(st) == (inode, device):
            return Path(entry.path)
    return None


class FileSource:
    """Follows one path: from `start` (the same file, or the file it was renamed to), then
    whatever file holds the path after a rotation; from the start again after truncation."""

    def __init__(
        self, path: Path, start: Position | None, follow: bool, poll_s: float = 0.2
    ) -> None:
        self.path, self.follow, self.poll_s = path, follow, poll_s
        self.done = False
        self._buffer = b""
        self._next_after_eof = False  # reading a rotated file: go on with `path` at its end
        self._file, self._id = self._open_start(start)

    def _open_start(self, start: Position | None) -> tuple[BinaryIO, tuple[int, int]]:
        f = self.path.open("rb")
        st = os.fstat(f.fileno())
        self._offset, self._line = 0, 0
        if start is None:
            return f, _identity(st)
        if _identity(st) != (start.inode, start.device):
            rotated = find_by_identity(self.path.parent, start.inode, start.device)
            if rotated is None:
                print(
                    f"watchkeeper logs ship: {self.path} was replaced and the file read "
                    "before is gone: starting at the new file's beginning",
                    file=sys.stderr,
                )
                return f, _identity(st)
            f.close()
            f = rotated.open("rb")
            st = os.fstat(f.fileno())
            self._next_after_eof = True
        if st.st_size >= start.offset:  # else truncated while we were away: from the start
            f.seek(start.offset)
            self._offset, self._line = start.offset, start.line
        return f, _identity(st)

    def take(self, limit: int, wait_s: float) -> list[RawLine]:
        """Up to `limit` complete lines; at the end of the file, a rotation or truncation is
        followed, else it waits (up to `wait_s`) for more when following."""
        lines: list[RawLine] = []
        deadline = time.monotonic() + wait_s
        while len(lines) < limit and not self.done:
            got = self._read(limit - len(lines))
            if got:
                lines += got
                continue
            switched = self._switch()
            if switched is not None:
                lines += switched
                continue
            if not self.follow:
                lines += self._rest()
                self.done = True
            elif lines or time.monotonic() >= deadline:
                break
            else:
                time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))
        return lines

    def close(self) -> None:
        """Close the file being read."""
        self._file.close()

    def _read(self, limit: int) -> list[RawLine]:
        lines: list[RawLine] = []
        while len(lines) < limit:
            cut = self._buffer.find(b"\n")
            if cut < 0 and len(self._buffer) < MAX_LINE_BYTES:
                chunk = self._file.read(_CHUNK)
                if not chunk:
                    break
                self._buffer += chunk
                continue
            cut = cut if cut >= 0 else MAX_LINE_BYTES - 1
            self._emit(lines, cut + 1)
        return lines

    def _emit(self, lines: list[RawLine], size: int) -> None:
        raw, self._buffer = self._buffer[:size], self._buffer[size:]
        self._offset += size
        self._line += 1
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if text.strip():
            lines.append(RawLine(text, self._line, Position(*self._id, self._offset, self._line)))

    def _rest(self) -> list[RawLine]:
        """The last line of a file that will not grow any more, newline or not."""
        lines: list[RawLine] = []
        if self._buffer:
            self._emit(lines, len(self._buffer))
        return lines

    def _switch(self) -> list[RawLine] | None:
        """At the end of the file: move to the path's new file after a rotation (returning
        the old file's unfinished last line), or to the start after a truncation; None when
        reading stays where it is."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None  # renamed, its successor not created yet: keep the old one
        if _identity(st) != self._id and (self.follow or self._next_after_eof):
            rest = self._rest()
            self._file.close()
            self._file = self.path.open("rb")
            self._id = _identity(os.fstat(self._file.fileno()))
            self._offset, self._line, self._next_after_eof = 0, 0, False
            return rest
        if _identity(st) == self._id and os.fstat(self._file.fileno()).st_size < self._offset:
            self._file.seek(0)
            self._buffer, self._offset, self._line = b"", 0, 0
            return []
        return None


class StdinSource:
    """Standard input, read by a thread into a bounded queue (so `take` can time out)."""

    def __init__(self, stream: BinaryIO | None = None, max_queued: int = 10_000) -> None:
        self.done = False
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_queued)
        self._number = 0
        stream = stream if stream is not None else sys.stdin.buffer
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: BinaryIO) -> None:
        for raw in stream:
            self._queue.put(raw)
        self._queue.put(None)

    def take(self, limit: int, wait_s: float) -> list[RawLine]:
        """Up to `limit` lines, waiting at most `wait_s` for the first one."""
        lines: list[RawLine] = []
        timeout: float | None = wait_s
        while len(lines) < limit and not self.done:
            try:
                raw = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
            except queue.Empty:
                break
            timeout = 0
            if raw is None:
                self.done = True
                break
            self._number += 1
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if text.strip():
                lines.append(RawLine(text, self._number, None))
        return lines
