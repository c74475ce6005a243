"""Retention: drop spans, log records, metric samples and audit entries older than their
policies, on a schedule.

Each data type has its own age (`retention.days` for spans; `logs.retention_days` and
`metrics.retention_days`, which default to it; `audit.retention_days`) and each pass runs
on its own, so one that fails (logged, retried at the next interval) never holds up another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from watchkeeper.server._audit import AuditLog
from watchkeeper.server._services import Services
from watchkeeper.store import Store
from watchkeeper.store.logs import LogStore
from watchkeeper.store.metrics import MetricsStore

log = logging.getLogger("watchkeeper.retention")
DAY_NS = 86_400 * 1_000_000_000
DAY_MS = 86_400_000


def cutoff_ns(now_s: float, days: int) -> int:
    """The time before which records are dropped."""
    return int(now_s * 1e9) - days * DAY_NS


async def every(interval_s: float, stop: asyncio.Event, what: str, run: Callable[[], None]) -> None:
    """`run` (in a thread) now and then every `interval_s`, until `stop` is set; a pass that
    fails is logged and tried again at the next interval."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(run)
        except Exception:
            log.exception("%s retention pass failed; will retry at the next interval", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def drop_spans(store: Store, days: int, now_s: float) -> None:
    """Delete spans that started more than `days` before `now_s`."""
    dropped = store.delete_before(None, cutoff_ns(now_s, days))
    if dropped:
        log.info("retention dropped spans", extra={"dropped": dropped})


def drop_logs(store: LogStore, days: int, now_s: float) -> None:
    """Delete log records timed more than `days` before `now_s`."""
    dropped = store.delete_before(None, cutoff_ns(now_s, days))
    if dropped:
        log.info("retention dropped log records", extra={"dropped": dropped})


def drop_samples(store: MetricsStore, days: int, now_s: float) -> None:
    """Delete metric samples older than `days` before the newest sample (but never after
    `now_s`, against a sample from the future), and the series left without one. Counted
    from the newest sample, as Prometheus's retention is: data written for a past period (a
    backfill, a test) stays."""
    newest = store.newest_ms()
    now_ms = int(now_s * 1000)
    cutoff_ms = min(now_ms, now_ms if newest is None else newest) - days * DAY_MS
    samples, series = store.delete_before(cutoff_ms)
    if samples or series:
        log.info("retention dropped metric samples", extra={"samples": samples, "series": series})


def prune_audit(audit: AuditLog, days: int) -> None:
    """Prune audit entries older than `days` (pruning leaves a checkpoint)."""
    pruned = audit.prune(days)
    if pruned:
        log.info("audit retention pruned entries", extra={"pruned": pruned})


async def retention_loop(svc: Services, stop: asyncio.Event) -> None:
    """Every retention pass of a server, each on its schedule, until `stop` is set."""
    cfg, clock = svc.config, svc.clock
    days, interval_s = cfg.retention.days, cfg.retention.check_interval_s
    await asyncio.gather(
        every(interval_s, stop, "span", lambda: drop_spans(svc.store, days, clock())),
        every(
            interval_s, stop, "log",
            lambda: drop_logs(svc.logs_ingest.store, cfg.logs.retention_days or days, clock()),
        ),
        every(
            interval_s, stop, "metric",
            lambda: drop_samples(
                svc.metrics_ingest.store, cfg.metrics.retention_days or days, clock()
            ),
        ),
        every(
            cfg.audit.check_interval_s, stop, "audit",
            lambda: prune_audit(svc.audit, cfg.audit.retention_days),
        ),
    )  # fmt: skip
