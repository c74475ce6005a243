"""The HTTP protocol the server runs: uvicorn's, with a deadline on a request's headers.

uvicorn bounds the idle time between requests on a connection (keep-alive) but not the time
a request takes to send its headers, so a client that opens connections and trickles header
bytes holds them as long as it likes. Here a request's headers must be complete within
`header_timeout_s` of its first byte (or of the connection); otherwise it gets a 408 and the
connection is closed. A body has its own deadline and size limit where it is read
(`read_body`: by OTLP ingest, and by `_limits` for every other route).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from watchkeeper.errors import BodyTimeout, PayloadTooLarge

_TIMEOUT_BODY = b'{"error":"the request headers came too slow (server.header_timeout_s)"}'
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"x-content-type-options: nosniff\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


def header_deadline(
    header_timeout_s: float, on_timeout: Callable[[], None] = lambda: None
) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, answering 408 when headers take over `header_timeout_s`."""

    class HeaderDeadline(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._timer is None:
                self._timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                on_timeout()
                self.transport.write(_TIMEOUT_ANSWER)
                self.transport.close()

    return HeaderDeadline


class _Charged(Protocol):
    """What a body's bytes are charged to as they arrive (ingest's `Reception`)."""

    def take(self, n: int) -> None:
        """Charge `n` bytes; raises `Overloaded` when they do not fit."""


async def read_body(
    request: Request, limit: int, reception: _Charged | None = None, timeout_s: float = 30.0
) -> bytes:
    """The request body, read as a stream: `PayloadTooLarge` past `limit`, `BodyTimeout`
    when it has not all arrived within `timeout_s`; each chunk charged to `reception`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit} byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body is over the {limit} byte limit")
                if reception is not None:
                    reception.take(len(chunk))
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(
            f"the body did not arrive within {timeout_s:g} s ({size} bytes came)"
        ) from None
    return b"".join(chunks)
