"""User feedback: scores POSTed to the server's `/api/v1/scores` from a bounded background queue.

Sending uses the stdlib only (the SDK pulls in no HTTP client) on one daemon thread, so
`feedback()` never blocks the app on the network; a full queue drops and counts.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from watchkeeper.sdk._runtime import Runtime, current, on_flush
from watchkeeper.sdk._safe import report_failure

log = logging.getLogger("watchkeeper.sdk")

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
_MAX_BACKOFF_S = 5.0
_EXIT_FLUSH_S = 2.0


def scores_url(endpoint: str) -> str:
    """The scores API URL on the server that `endpoint` (an OTLP endpoint) points at."""
    base = endpoint.rstrip("/")
    for suffix in ("/v1/traces", "/v1/logs", "/v1/metrics"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.rstrip("/") + "/api/v1/scores"


def score_body(
    trace_id: str,
    value: float | None,
    label: str | None,
    *,
    name: str,
    comment: str | None,
    user_id: str | None,
    span_id: str | None,
) -> dict[str, Any]:
    """The JSON body of one score; ValueError says what is wrong with the arguments."""
    trace_id = trace_id.lower()
    if not _TRACE_ID.match(trace_id):
        raise ValueError(f"trace_id must be 32 hex characters, got {trace_id!r}")
    if span_id is not None and not _SPAN_ID.match(span_id.lower()):
        raise ValueError(f"span_id must be 16 hex characters, got {span_id!r}")
    if value is None and label is None:
        raise ValueError("feedback needs a value, a label or both")
    # A bool is a thumbs up/down: True → 1.0, False → 0.0.
    if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
        raise ValueError(f"value must be a finite number, got {value!r}")
    if not name:
        raise ValueError("name must not be empty")
    body: dict[str, Any] = {"trace_id": trace_id, "name": name, "source": "feedback"}
    optional = {
        "value": None if value is None else float(value),
        "label": label,
        "comment": comment,
        "user_id": user_id,
        "span_id": span_id.lower() if span_id else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


class FeedbackSender:
    """Delivers score bodies from a bounded queue on one daemon thread, retrying briefly."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        max_queue: int = 1000,
        timeout_s: float = 5.0,
        retries: int = 2,
        on_loss: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self._on_loss = on_loss  # told "feedback_dropped" / "feedback_failed" (a metric)
        self._headers = {"Content-Type": "application/json", **headers}
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._timeout_s = timeout_s
        self._retries = retries
        self._pending = 0  # queued or being sent
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, body: dict[str, Any]) -> bool:
        """Queue one body; False (and counted as dropped) when the queue is full or closed."""
        with self._idle:
            full = self._closed
            if not full:
                try:
                    self._queue.put_nowait(body)
                except queue.Full:
                    full = True
            if full:
                self.dropped += 1
                self._lost("feedback_dropped")
                return False
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="watchkeeper-feedback", daemon=True
                )
                self._thread.start()
        return True

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued body was sent (or given up); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self, timeout_s: float = 5.0) -> bool:
        """Flush, then stop the thread; later submits are dropped."""
        done = self.flush(timeout_s)
        with self._idle:
            self._closed = True
            thread = self._thread
        if thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:  # the thread is stuck sending; it is a daemon
                return False
            thread.join(timeout=timeout_s)
        return done

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            try:
                ok = self._deliver(body)
            except Exception:  # the sender thread must survive anything
                log.exception("watchkeeper: feedback delivery failed")
                ok = False
            with self._idle:
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1
                    self._lost("feedback_failed")
                self._pending -= 1
                self._idle.notify_all()

    def _lost(self, kind: str) -> None:
        if self._on_loss is not None:
            with contextlib.suppress(Exception):  # a metric must not break delivery
                self._on_loss(kind)

    def _deliver(self, body: dict[str, Any]) -> bool:
        data = json.dumps(body).encode()
        for attempt in range(self._retries + 1):
            retry_after = self._post(data)
            if retry_after is None:
                return True
            if retry_after < 0 or attempt == self._retries:
                break
            time.sleep(min(_MAX_BACKOFF_S, retry_after or 0.2 * 2**attempt))
        return False

    def _post(self, data: bytes) -> float | None:
        """None when accepted; seconds to wait before a retry; -1 when retrying is pointless."""
        request = urllib.request.Request(self.url, data=data, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            if exc.code not in _RETRY_STATUSES:
                log.warning("watchkeeper: feedback rejected with %s: %s", exc.code, _text(exc))
                return -1.0
            return _retry_after(exc.headers.get("Retry-After"))
        except OSError as exc:
            log.warning("watchkeeper: feedback not delivered to %s: %s", self.url, exc)
            return 0.0


def _text(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(500).decode(errors="replace")
    except OSError:
        return ""


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


class _Senders:
    """The sender of the current `init()` (replaced, and the old one drained, on re-init)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: object | None = None
        self._sender: FeedbackSender | None = None

    def for_runtime(self, runtime: Runtime) -> FeedbackSender:
        """The sender for `runtime`'s endpoint and key (made on first use)."""
        with self._lock:
            if self._sender is None:
                # The sender thread is a daemon: give queued scores a moment at exit.
                atexit.register(flush_feedback, _EXIT_FLUSH_S)
            if self._sender is None or self._owner is not runtime:
                old = self._sender
                errors = runtime.metrics.sdk_errors
                self._sender = FeedbackSender(
                    scores_url(runtime.settings.endpoint),
                    dict(runtime.settings.headers),
                    on_loss=lambda kind: errors.labels(kind).inc(),
                )
                self._owner = runtime
                if old is not None:  # drain it off the caller's thread
                    threading.Thread(target=old.close, daemon=True).start()
            return self._sender

    def current(self) -> FeedbackSender | None:
        """The latest sender, if any feedback was given yet."""
        with self._lock:
            return self._sender


_SENDERS = _Senders()


def feedback(
    trace_id: str,
    value: float | None = None,
    label: str | None = None,
    *,
    name: str = "user_feedback",
    comment: str | None = None,
    user_id: str | None = None,
    span_id: str | None = None,
) -> bool:
    """Record a score (e.g. thumbs up/down) on a trace; True when it was queued for sending."""
    runtime = current()
    if runtime is None:
        return False
    try:
        body = score_body(
            trace_id,
            value,
            label,
            name=name,
            comment=comment,
            user_id=user_id,
            span_id=span_id,
        )
        return _SENDERS.for_runtime(runtime).submit(body)
    except Exception as exc:
        report_failure("feedback", exc)
        return False


def flush_feedback(timeout_s: float = 5.0) -> bool:
    """Wait until queued feedback was delivered (or given up); False on timeout."""
    sender = _SENDERS.current()
    return True if sender is None else sender.flush(timeout_s)


# `flush()` and `shutdown()` wait for queued scores too (the runtime does not import us).
on_flush(flush_feedback)
