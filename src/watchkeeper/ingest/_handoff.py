"""`Handoff`: requests decoded at the door, kept for the writer so it does not decode them a
second time.

A request is decoded before it is acknowledged (a body that is not one gets 400, records
refused alone are counted for `partial_success`); the writer then needs its rows. Rather than
decode the spooled bytes again, the door leaves the rows here under a digest of what was
spooled, and the writer takes them by the digest of the record it reads. What is not here
(after a restart: a replay; past the bound; a request whose rows hold its time of receipt,
which a decode at replay would give another time) the writer decodes from the spool, as
before: the spool stays the only truth, this is only a shortcut to it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from watchkeeper.ingest._spool import Entry, Record

T = TypeVar("T")
_MAX_AGE_S = 120.0  # rows never taken (a request cancelled once spooled) are let go


def digest(project: str, content_type: str, flags: int, body: bytes) -> bytes:
    """What identifies a spooled request (the same at the door and in the writer)."""
    h = hashlib.blake2b(body, digest_size=16)
    h.update(f"\0{project}\0{content_type}\0{flags}".encode())
    return h.digest()


class Handoff(Generic[T]):
    """Decoded requests by digest, `most` items (records) at most; see the module."""

    def __init__(self, most: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._most = most
        self._clock = clock
        self._held = 0
        self._items: dict[bytes, list[tuple[T, int]]] = {}
        self._order: deque[tuple[float, bytes]] = deque()
        self._lock = threading.Lock()

    def put(self, key: bytes, value: T, size: int) -> bool:
        """Keep `value` (of `size` items) for the writer; False when there is no room."""
        now = self._clock()
        with self._lock:
            while self._order and now - self._order[0][0] > _MAX_AGE_S:
                self._pop(self._order.popleft()[1])
            if self._held + size > self._most:
                return False
            self._items.setdefault(key, []).append((value, size))
            self._order.append((now, key))
            self._held += size
        return True

    @contextmanager
    def keeping(self, entry: Entry, value: T | None, size: int) -> Iterator[None]:
        """Keep `value` (of `size` items) for the writer of `entry` while the caller spools
        it, and let it go if spooling fails. None keeps nothing: the writer decodes."""
        key = digest(entry.project, entry.content_type, entry.flags, entry.body)
        kept = value is not None and self.put(key, value, size)
        try:
            yield
        except BaseException:
            if kept:
                self.take(key)
            raise

    def take_for(self, record: Record) -> T | None:
        """What the door kept for this spooled record (taken away), or None."""
        return self.take(digest(record.project, record.content_type, record.flags, record.body))

    def take(self, key: bytes) -> T | None:
        """The value kept under `key` (taken away), or None."""
        with self._lock:
            return self._pop(key)

    def _pop(self, key: bytes) -> T | None:
        kept = self._items.get(key)
        if not kept:
            return None
        value, size = kept.pop(0)
        if not kept:
            del self._items[key]
            if not self._items:
                self._order.clear()  # nothing left to age out
        self._held -= size
        return value

    @property
    def held(self) -> int:
        """Items kept now."""
        return self._held
