"""Limits of the API and the UI: a bounded, timely body and a fair share of requests.

OTLP ingest bounds its own bodies (`ingest.max_body_bytes`, `ingest.body_timeout_s`) and its
load (admission follows the writer: 503 + `Retry-After`). Every other request passes here
before it is routed (`limits.*` in the configuration):

- its body (rules, silences, scores, keys: small JSON) is read by the reader ingest uses
  (`_http.read_body`): at most `max_body_bytes` (413), all of it within `body_timeout_s`
  (408, the connection closed), then handed on, so no route reads an unbounded body;
- it is charged to two token buckets: its credential's (the `Authorization` or `X-API-Key`
  header, or a session cookie, known by a hash: a credential is counted whether it is valid
  or not) and its client address's. An empty bucket answers 429 with `Retry-After`.
  Health probes (`/healthz`, `/readyz`), OTLP ingest (`/v1/...`) and static assets are not
  counted.

Refusals are counted in `watchkeeper_api_refused_total{reason}` and logged at most once a
minute per address or credential (a credential by a hash prefix, never its secret).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.config import LimitsConfig
from watchkeeper.errors import AuthError, BodyTimeout, PayloadTooLarge
from watchkeeper.server._auth import bearer_token
from watchkeeper.server._http import read_body

log = logging.getLogger("watchkeeper.server.limits")

#: Paths whose requests are not counted: probes, OTLP ingest (bounded by its admission),
#: static assets (files of the UI and the API docs).
UNCOUNTED_PREFIXES = ("/healthz", "/readyz", "/v1/", "/api/v1/write", "/ui/", "/docs-assets/")
#: Paths that read their bodies themselves, within their own limits: OTLP ingest and
#: Prometheus remote-write.
OWN_BODY_PREFIXES = ("/v1/", "/api/v1/write")
REASONS = ("rate_credential", "rate_address", "too_large", "too_slow")
#: Buckets kept per kind at most; a full bucket is the same as none, so those go first.
MAX_BUCKETS = 100_000
LOG_EVERY_S = 60.0


class TokenBuckets:
    """A token bucket per key: `rate` tokens a second, up to `burst`; bounded memory.

    `wait(key)` says how long until the key may spend a token (0: now), `take(key)` spends
    one. A key never seen has a full bucket.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_BUCKETS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of 1 or more")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at); LRU order
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may spend a token; 0.0 when it may now."""
        with self._lock:
            level = self._level(key, self._clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: str) -> None:
        """Spend one of `key`'s tokens (after `wait(key)` said 0)."""
        with self._lock:
            now = self._clock()
            level = self._level(key, now)
            self._buckets.pop(key, None)
            if len(self._buckets) >= self._max:
                self._evict(now)
            self._buckets[key] = (level - 1.0, now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max:  # all in use: forget the least recently used half
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]


def credential_key(connection: HTTPConnection, cookies: Sequence[str] = ()) -> str | None:
    """The SHA-256 (hex) of a request's credential, None without one: the bearer token or
    `X-API-Key` (a malformed header as it is sent), else the first of `cookies` it sends.
    Its first 8 digits are how the auth log names the same key (`_auth.fingerprint`)."""
    headers = connection.headers
    authorization, api_key = headers.get("authorization"), headers.get("x-api-key")
    try:
        value = bearer_token(authorization, api_key)
    except AuthError:
        value = authorization if authorization is not None else api_key
    if value is None:
        value = next((connection.cookies[c] for c in cookies if c in connection.cookies), None)
    if value is None:
        return None
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def _counted(path: str) -> bool:
    return not path.startswith(UNCOUNTED_PREFIXES)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then what the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class ApiLimits:
    """ASGI middleware: bounds each request's body and charges it to its token buckets.

    `cookies`: names of cookies that carry a credential (a session), counted like a key.
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: LimitsConfig,
        registry: CollectorRegistry | None = None,
        *,
        cookies: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits
        self.cookies = tuple(cookies)
        rate, burst = limits.credential_rate, limits.credential_burst
        self.by_credential = TokenBuckets(rate, burst, clock=clock) if rate > 0 else None
        rate, burst = limits.address_rate, limits.address_burst
        self.by_address = TokenBuckets(rate, burst, clock=clock) if rate > 0 else None
        self._clock = clock
        self._logged: dict[str, float] = {}
        self._refused = Counter(
            "watchkeeper_api_refused",
            "API and UI requests refused before routing, by reason: rate_credential, "
            "rate_address (429), too_large (413), too_slow (408)",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:
            self._refused.labels(reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request past a limit; otherwise pass it on with its body read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if _counted(path) and (refusal := self._charge(HTTPConnection(scope))) is not None:
            await refusal(scope, receive, send)
            return
        if _has_body(scope) and not path.startswith(OWN_BODY_PREFIXES):
            try:
                body = await self._body(Request(scope, receive))
            except ClientDisconnect:
                log.info("client disconnected before its request body was read: %s", path)
                return
            if isinstance(body, JSONResponse):
                await body(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _charge(self, connection: HTTPConnection) -> JSONResponse | None:
        """Take a token from the request's buckets; the 429 when one of them is empty."""
        address = connection.client.host if connection.client else "unknown"
        credential = credential_key(connection, self.cookies)
        # (buckets, key, kind, how the log names it)
        charges: list[tuple[TokenBuckets, str, str, str]] = []
        if self.by_address is not None:
            charges.append((self.by_address, address, "address", f"address {address}"))
        if self.by_credential is not None and credential is not None:
            name = f"credential sha256:{credential[:8]}"
            charges.append((self.by_credential, credential, "credential", name))
        waits = [(buckets.wait(key), buckets, kind, who) for buckets, key, kind, who in charges]
        wait, buckets, kind, who = max(waits, key=lambda w: w[0], default=(0.0, None, "", ""))
        if buckets is None or wait <= 0:
            for bucket, key, _, _ in charges:
                bucket.take(key)
            return None
        return self._too_many(kind, who, buckets, wait)

    def _too_many(self, kind: str, who: str, buckets: TokenBuckets, wait: float) -> JSONResponse:
        self._refused.labels(f"rate_{kind}").inc()
        retry = max(1, math.ceil(wait))
        source = "from this address" if kind == "address" else "with this credential"
        message = (
            f"too many requests {source}: at most {buckets.rate:g} a second, "
            f"{buckets.burst} at once; retry after {retry} s "
            f"(limits.{kind}_rate and limits.{kind}_burst set them)"
        )
        self._log(who, f"refused {who}: {message}")
        return JSONResponse({"error": message}, 429, {"Retry-After": str(retry)})

    async def _body(self, request: Request) -> bytes | JSONResponse:
        """The body within `max_body_bytes` and `body_timeout_s`; else the 413 or 408."""
        limits = self.limits
        try:
            return await read_body(request, limits.max_body_bytes, None, limits.body_timeout_s)
        except PayloadTooLarge as exc:
            self._refused.labels("too_large").inc()
            message = f"request {exc} (limits.max_body_bytes)"
            return JSONResponse({"error": message}, 413, {"Connection": "close"})
        except BodyTimeout as exc:
            self._refused.labels("too_slow").inc()
            where = request.client.host if request.client else "unknown"
            self._log(where, f"cut off a slow request body from {where}: {exc}")
            message = f"{exc} (limits.body_timeout_s)"
            return JSONResponse({"error": message}, 408, {"Connection": "close"})

    def _log(self, who: str, line: str) -> None:
        """Log `line` unless `who` was logged in the last minute (every refusal is counted)."""
        now = self._clock()
        if now - self._logged.get(who, -math.inf) < LOG_EVERY_S:
            return
        if len(self._logged) >= MAX_BUCKETS:
            self._logged.clear()
        self._logged[who] = now
        log.warning("%s (counted in watchkeeper_api_refused_total)", line)


def install_limits(
    app: Any, limits: LimitsConfig, registry: CollectorRegistry, cookies: Sequence[str] = ()
) -> None:
    """Put `ApiLimits` in front of `app`'s routes; `cookies`: those that carry a session."""
    app.add_middleware(ApiLimits, limits=limits, registry=registry, cookies=cookies)
