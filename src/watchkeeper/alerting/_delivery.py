"""Draining the outbox: send each entry through its channel, retry with backoff, log attempts.

Entries of one alert on one channel go out in order: while an earlier one waits for a retry,
later ones wait too, so a `resolved` never overtakes its `firing`. A channel that fails with a
retryable error is not tried again in the same round. Nothing is deleted on failure: the entry
stays pending in the meta DB until delivered, refused for good, or too old. Each attempt is
claimed in the meta DB first, so two replicas never send the same entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from watchkeeper.alerting import _repo as repo
from watchkeeper.alerting._config import AlertingConfig
from watchkeeper.alerting._metrics import AlertMetrics
from watchkeeper.alerting._notification import Channel, DeliveryError
from watchkeeper.alerting._notify import retry_delay
from watchkeeper.store.meta import MetaStore

log = logging.getLogger("watchkeeper.alerting.delivery")
BATCH = 200  # entries per channel looked at per round
#: How long a replica's claim on one delivery attempt lasts: longer than a channel's HTTP
#: timeout (30 s), so no other replica sends the entry while this one may still be sending.
CLAIM_S = 45.0


class Deliverer:
    """Sends due outbox entries through the channels it was given."""

    def __init__(
        self,
        config: AlertingConfig,
        meta: MetaStore,
        channels: Mapping[str, Channel],
        metrics: AlertMetrics,
        clock: Callable[[], float] = time.time,
        *,
        redact: Callable[[str], str] = str,
    ) -> None:
        self._redact = redact  # stored errors never hold a channel's secret
        self._config = config
        self._meta = meta
        self._channels = dict(channels)
        self._metrics = metrics
        self._clock = clock

    async def deliver_due(self) -> int:
        """Try every due entry once; return how many were delivered."""
        now = self._clock()
        entries = await asyncio.to_thread(self._pending)
        due: dict[str, list[repo.OutboxEntry]] = {}
        waiting: set[tuple[str, str]] = set()
        for e in entries:
            key = (e.channel, e.notification.fingerprint)
            if key in waiting:
                continue
            if e.next_attempt_at > now:
                waiting.add(key)
                continue
            due.setdefault(e.channel, []).append(e)
        done = await asyncio.gather(*(self._drain(ch, items) for ch, items in due.items()))
        depth = await asyncio.to_thread(repo.depth, self._meta)
        self._metrics.outbox_depth.set(depth)
        return sum(done)

    def _pending(self) -> list[repo.OutboxEntry]:
        # Per channel, so a backlog for a channel that is down never hides the others' entries.
        entries = []
        for channel in repo.pending_channels(self._meta):
            entries.extend(repo.pending(self._meta, BATCH, channel))
        return entries

    async def _drain(self, channel_name: str, entries: list[repo.OutboxEntry]) -> int:
        delivered = 0
        blocked: set[str] = set()
        for entry in entries:
            if entry.notification.fingerprint in blocked:
                continue
            result = await self._attempt(channel_name, entry)
            if result == "ok":
                delivered += 1
            elif result == "retry":
                return delivered  # the channel is down or busy: leave the rest for later
            else:
                blocked.add(entry.notification.fingerprint)
        return delivered

    async def _attempt(self, channel_name: str, entry: repo.OutboxEntry) -> str:
        now = self._clock()
        # Replicas: a leader that lost its lease without knowing yet may still be in a round.
        if not await asyncio.to_thread(repo.claim, self._meta, entry, now + CLAIM_S):
            return "taken"  # another replica sends it
        channel = self._channels.get(channel_name)
        started = time.perf_counter()
        error: str | None = None
        next_at: float | None = None
        if now - entry.created_at > self._config.outbox_max_age:
            result, error = "expired", f"not delivered within {self._config.outbox_max_age:g}s"
            self._metrics.outbox_dropped.inc()
        elif channel is None:
            result, error = "failed", f"no channel named {channel_name!r} is configured"
        else:
            result, error, next_at = await self._send(channel, entry, now)
            error = None if error is None else self._redact(error)
        duration_ms = (time.perf_counter() - started) * 1000.0
        self._metrics.notifications.labels(channel=channel_name, result=result).inc()
        await asyncio.to_thread(
            repo.record_attempt,
            self._meta,
            entry,
            now=self._clock(),
            result=result,
            error=error,
            duration_ms=duration_ms,
            next_attempt_at=next_at,
        )
        return result

    async def _send(
        self, channel: Channel, entry: repo.OutboxEntry, now: float
    ) -> tuple[str, str | None, float | None]:
        try:
            await channel.send(entry.notification)
        except DeliveryError as exc:
            if not exc.retryable:
                log.warning("delivery to %s refused for good: %s", entry.channel, exc)
                return "failed", str(exc), None
            cfg = self._config
            delay = retry_delay(entry.attempts + 1, exc.retry_after, cfg.retry_base, cfg.retry_max)
            log.info("delivery to %s failed, retry in %.1fs: %s", entry.channel, delay, exc)
            return "retry", str(exc), self._clock() + delay
        except Exception as exc:  # a channel bug: keep the entry and try again later
            log.exception("channel %s raised", entry.channel)
            delay = retry_delay(entry.attempts + 1, None, self._config.retry_base, 300.0)
            return "retry", repr(exc), now + delay
        return "ok", None, None
