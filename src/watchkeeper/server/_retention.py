"""Retention: drop spans, metric samples and audit entries older than their policies, on a
schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from watchkeeper.config import AuditConfig, RetentionConfig
from watchkeeper.server._audit import AuditLog
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsStore

log = logging.getLogger("watchkeeper.retention")
DAY_NS = 86_400 * 1_000_000_000


def cutoff_ns(now_s: float, days: int) -> int:
    """The start time before which spans are dropped."""
    return int(now_s * 1e9) - days * DAY_NS


async def retention_loop(
    store: Store, policy: RetentionConfig, clock: Callable[[], float], stop: asyncio.Event
) -> None:
    """Apply the policy now, then every `check_interval_s`, until `stop` is set."""
    while not stop.is_set():
        try:
            dropped = await asyncio.to_thread(
                store.delete_before, None, cutoff_ns(clock(), policy.days)
            )
            if dropped:
                log.info("retention dropped spans", extra={"dropped": dropped})
        except Exception:
            log.exception("retention pass failed; will retry at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=policy.check_interval_s)


async def metrics_retention_loop(
    store: MetricsStore,
    days: int,
    policy: RetentionConfig,
    clock: Callable[[], float],
    stop: asyncio.Event,
) -> None:
    """Delete metric samples older than `days` before the newest sample (but never after the
    clock, against a sample from the future), and the series left without one, now and then
    every `check_interval_s`, until `stop` is set. Counted from the newest sample, as
    Prometheus's retention is: data written for a past period (a backfill, a test) stays."""
    while not stop.is_set():
        try:
            newest = store.newest_ms()
            now_ms = int(clock() * 1000)
            cutoff_ms = min(now_ms, now_ms if newest is None else newest) - days * 86_400_000
            samples, series = await asyncio.to_thread(store.delete_before, cutoff_ms)
            if samples or series:
                log.info(
                    "retention dropped metric samples",
                    extra={"samples": samples, "series": series},
                )
        except Exception:
            log.exception("metric retention pass failed; will retry at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=policy.check_interval_s)


async def audit_retention_loop(audit: AuditLog, policy: AuditConfig, stop: asyncio.Event) -> None:
    """Prune audit entries past `policy.retention_days` now, then every `check_interval_s`."""
    while not stop.is_set():
        try:
            pruned = await asyncio.to_thread(audit.prune, policy.retention_days)
            if pruned:
                log.info("audit retention pruned entries", extra={"pruned": pruned})
        except Exception:
            log.exception("audit retention pass failed; will retry at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=policy.check_interval_s)
