"""Request-scoped context: user/session/metadata attributes and the request's outcome.

`context()` puts attributes in a contextvar; every span the SDK starts beneath it copies them,
and the enclosing request span gets them too when it ends (see `RequestState`).
`RequestState` lets a guard deep in the call tree tell the request span it fell back or timed out.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import Generic, TypeVar

from watchkeeper.model import conventions as c

T = TypeVar("T")

ATTRS: ContextVar[dict[str, str] | None] = ContextVar("watchkeeper_context", default=None)

# Outcomes a guard can push up to its request, most severe last.
_REQUEST_RANK = {"success": 0, "fallback": 1, "timeout": 2}


class RequestState:
    """What happened beneath a request: the worst guard outcome, and `context()` attributes.

    The request span starts before the handler calls `context(user_id=...)`; keeping those
    attributes here lets the request span carry them too, so requests count per user/session.
    """

    # Defaults on the class, no __init__: every root span makes one.
    outcome: str | None = None
    attributes: dict[str, str] | None = None

    def escalate(self, outcome: str) -> None:
        """Remember `outcome` if it is worse than what was reported so far."""
        if _REQUEST_RANK.get(outcome, 0) > _REQUEST_RANK.get(self.outcome or "success", 0):
            self.outcome = outcome


REQUEST: ContextVar[RequestState | None] = ContextVar("watchkeeper_request", default=None)


def report_to_request(outcome: str) -> None:
    """Tell the enclosing request (server span or root span) that a guard ended in `outcome`."""
    state = REQUEST.get()
    if state is not None:
        state.escalate(outcome)


def current_attributes() -> dict[str, str]:
    """The attributes `context()` set for the current task/thread (a copy)."""
    return dict(ATTRS.get() or {})


def context_attributes(
    user_id: str | None, session_id: str | None, metadata: dict[str, str]
) -> dict[str, str]:
    """Map `context()` arguments to span attribute names."""
    attrs: dict[str, str] = {}
    if user_id is not None:
        attrs[c.USER_ID] = str(user_id)
    if session_id is not None:
        attrs[c.SESSION_ID] = str(session_id)
    for key, value in metadata.items():
        name = c.WK_FEATURE if key == "feature" else f"watchkeeper.metadata.{key}"
        attrs[name] = str(value)
    return attrs


class AsyncWith(Generic[T]):
    """`async with` for a context manager whose `__enter__`/`__exit__` never block."""

    __slots__ = ()

    def __enter__(self) -> T:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> T:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


# Lower case: used like a function, `with watchkeeper.context(user_id=...)`.
class context(AsyncWith["context"]):
    """Context manager (sync and async) tagging every span started beneath it."""

    __slots__ = ("_attrs", "_tokens")

    def __init__(
        self, user_id: str | None = None, session_id: str | None = None, **metadata: str
    ) -> None:
        self._attrs = context_attributes(user_id, session_id, metadata)
        self._tokens: list[Token[dict[str, str] | None]] = []

    def __enter__(self) -> context:
        outer = ATTRS.get()
        merged = {**outer, **self._attrs} if outer else dict(self._attrs)
        self._tokens.append(ATTRS.set(merged))
        state = REQUEST.get()
        if state is not None:
            state.attributes = {**(state.attributes or {}), **self._attrs}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ATTRS.reset(self._tokens.pop())
