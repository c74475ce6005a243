"""Sending one HTTP request and turning every way it can fail into a DeliveryError.

429, 408 and 5xx are worth retrying (honouring `Retry-After`); any other 4xx is our fault or
the receiver's configuration, and retrying would only repeat it.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from watchkeeper.alerting._notification import DeliveryError

MAX_ERROR_TEXT = 500
RETRYABLE_STATUS = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def is_retryable_status(status: int) -> bool:
    """Whether a response status means 'try again later'."""
    return status in RETRYABLE_STATUS or status >= 500


def error_for_response(what: str, response: httpx.Response) -> DeliveryError:
    """The DeliveryError for a non-2xx response, with the receiver's own words in it."""
    text = response.text[:MAX_ERROR_TEXT].strip()
    message = f"{what}: HTTP {response.status_code}" + (f": {text}" if text else "")
    if is_retryable_status(response.status_code):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return DeliveryError(message, retryable=True, retry_after=retry_after)
    return DeliveryError(message, retryable=False)


@asynccontextmanager
async def client_for(
    client: httpx.AsyncClient | None, timeout_s: float
) -> AsyncIterator[httpx.AsyncClient]:
    """The shared client when one was passed in, else a short-lived one closed after use."""
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(timeout=timeout_s) as own:
        yield own


async def post(
    client: httpx.AsyncClient | None,
    url: str,
    *,
    what: str,
    timeout_s: float,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    failure: Callable[[str, httpx.Response], DeliveryError] = error_for_response,
) -> httpx.Response:
    """POST and return the 2xx response, or raise DeliveryError saying what went wrong.

    `failure` makes the error of a non-2xx response, for receivers that say more in the body.
    """
    try:
        async with client_for(client, timeout_s) as http:
            response = await http.post(
                url,
                json=json,
                content=content,
                headers=headers,
                timeout=timeout_s,
            )
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise DeliveryError(f"{what}: the URL is not usable: {exc}", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{what}: timed out after {timeout_s:g}s ({exc!r})") from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"{what}: cannot reach {_origin(url)}: {exc!r}") from exc
    if response.is_success:
        return response
    raise failure(what, response)


def _origin(url: str) -> str:
    # Webhook URLs carry their secret in the path or query: name the host only.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(invalid URL)"
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
