"""The one exception hierarchy of Watchkeeper. Messages say what to do about the problem."""

from __future__ import annotations


class WatchkeeperError(Exception):
    """Base of every error Watchkeeper raises on purpose."""


class ConfigError(WatchkeeperError):
    """A configuration value is wrong; the message names the key and how to fix it."""


class DataDirError(ConfigError):
    """The data directory cannot be created, written or locked."""


class DecodeError(WatchkeeperError):
    """An OTLP body could not be decoded (sent back as 400 with this message)."""


class PayloadTooLarge(WatchkeeperError):
    """A body is over the configured limit once decompressed (sent back as 413)."""


class BodyTimeout(WatchkeeperError):
    """A client did not send its whole body in time (sent back as 408; counted)."""


class UnsupportedContentType(WatchkeeperError):
    """A body came with a content type we do not read (sent back as 415)."""


class Overloaded(WatchkeeperError):
    """The server cannot take more now; the client should retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Overloaded):
    """A project sent more than its rate limit allows (sent back as 429 with Retry-After)."""


class AuthError(WatchkeeperError):
    """A request carried no credential, or one we do not know (sent back as 401).

    Messages never repeat a credential: logs name one by a short hash prefix.
    """


class Forbidden(AuthError):
    """A valid credential without the role this needs (sent back as 403, naming the role)."""


class NotFound(WatchkeeperError):
    """The thing asked for does not exist (sent back as 404)."""


class Conflict(WatchkeeperError):
    """What a request would create exists already (sent back as 409)."""


class StoreError(WatchkeeperError):
    """A store (spans, metrics or logs) failed a read or a write."""


class StoreOutOfMemory(StoreError):
    """The store's engine needed more memory than its limit (`store.memory_limit_mb`) for a
    read or a write: one query too large for it, or too much at once. The server answers
    503 with Retry-After (the Prometheus API: 422, as Prometheus does for a query that
    would load too many samples) and says so, not a 500."""


class StoreDataError(StoreError):
    """The store refused a write for what it holds (a value it cannot keep): a retry of the
    same rows fails again, so the ingest writer sets their records aside (dead letter)."""


class ValidationError(WatchkeeperError):
    """A rule, SLO, channel or query parameter is invalid; the message says which and why."""


class GuardTimeout(WatchkeeperError, TimeoutError):
    """A guarded call did not answer within its deadline (retries and fallbacks included)."""


class CircuitOpen(WatchkeeperError):
    """A guard refused a call without trying: its circuit breaker is open, or its workers busy."""
