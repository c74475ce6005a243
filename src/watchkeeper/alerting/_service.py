"""`AlertingEngine`: the evaluator, the delivery worker and the digest schedule as tasks.

`build_alerting(services)` makes one from the server's services; the app starts it in its
lifespan with `await engine.start()` and stops it with `await engine.stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from watchkeeper.alerting import _repo as repo
from watchkeeper.alerting._config import AlertingConfig, Rule, Slo, alerting_of, parse_rule
from watchkeeper.alerting._delivery import Deliverer
from watchkeeper.alerting._engine import CycleResult, LeaseLost, RuleEvaluator
from watchkeeper.alerting._evaluate import Decision
from watchkeeper.alerting._fetch import Signals
from watchkeeper.alerting._metrics import AlertMetrics
from watchkeeper.alerting._notification import Channel, DeliveryError
from watchkeeper.alerting._notify import test_notification
from watchkeeper.alerting._policy import Silence
from watchkeeper.alerting._report import build_digest, next_run
from watchkeeper.alerting._slo import burn_rules, slo_status
from watchkeeper.alerting._state import AlertState
from watchkeeper.config import Config
from watchkeeper.errors import ConfigError, ValidationError, WatchkeeperError
from watchkeeper.store import Store
from watchkeeper.store.meta import MetaStore
from watchkeeper.vault import Redactor

log = logging.getLogger("watchkeeper.alerting")
LEASE = "alert-evaluation"


class AlertingEngine:
    """Evaluates rules every `interval` seconds and delivers notifications from the outbox."""

    def __init__(
        self,
        config: AlertingConfig,
        store: Store,
        meta: MetaStore,
        registry: CollectorRegistry,
        channels: Mapping[str, Channel],
        *,
        channel_specs: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        base_url: str = "",
        http: httpx.AsyncClient | None = None,
        projects: Callable[[], Iterable[str]] | None = None,
        redact: Callable[[str], str] | None = None,
        signals: Signals = Signals(),
    ) -> None:
        self.config = config
        self.store = store
        self.meta = meta
        self.channels = dict(channels)
        self.channel_specs = dict(channel_specs or {})
        self.clock = clock
        self.base_url = base_url
        self.registry = registry
        #: Scrubs channel secrets from delivery errors before they are stored or shown.
        self.redact: Callable[[str], str] = redact or (lambda text: text)
        self.metrics = AlertMetrics(registry)
        severities = {n: tuple(s.severities) for n, s in self.channel_specs.items()}
        self.evaluator = RuleEvaluator(
            config,
            store,
            meta,
            self.metrics,
            channel_names=list(self.channels),
            channel_severities=severities,
            base_url=base_url,
            projects=projects,
            signals=signals,
        )
        self.deliverer = Deliverer(
            config, meta, self.channels, self.metrics, clock, redact=self.redact
        )
        self._http = http
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()  # one cycle at a time (loop, API test, bench)
        # Replicas sharing a meta DB: only the holder of the lease evaluates and delivers.
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.is_leader = False
        self._meta_lost = False  # the meta DB stopped answering (said once in the log)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the evaluation loop, the delivery worker and the digest schedule."""
        if self._tasks or not self.config.enabled:
            return
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        loops: list[Coroutine[Any, Any, None]] = [self._evaluate_loop(), self._deliver_loop()]
        if self.config.reports.daily or self.config.reports.weekly:
            loops.append(self._report_loop())
        self._tasks = [asyncio.create_task(c) for c in loops]

    async def stop(self) -> None:
        """Stop the loops (an unsent notification stays in the outbox for next time)."""
        self._stop.set()
        self._wake.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.aclose()

    async def _sleep(self, seconds: float, wake: bool = False) -> None:
        waits = [asyncio.ensure_future(self._stop.wait())]
        if wake:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        timeout = max(0.0, seconds)
        _done, rest = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
        for w in rest:
            w.cancel()

    async def tick(self) -> CycleResult | None:
        """Hold (or try to take) the lease, then run one cycle; None when another leads."""
        now = self.clock()
        leading = await asyncio.to_thread(
            repo.acquire_lease, self.meta, LEASE, self.holder, now, self.config.lease_seconds
        )
        if leading != self.is_leader:
            log.info(
                "alerting: this replica (%s) %s", self.holder,
                "now evaluates rules" if leading else "no longer holds the evaluation lease",
            )  # fmt: skip
        if not (leading and self.is_leader):
            # Taking over: the last leader's alert state. Following: the leader's, so this
            # replica's API shows the alerts as they are.
            await asyncio.to_thread(self.evaluator.reload)
        self.is_leader = leading
        self.metrics.leader.set(1 if leading else 0)
        if not leading:
            return None
        try:
            return await self.run_cycle(force=False, fenced=True)
        except LeaseLost as exc:  # this cycle took longer than the lease: it wrote nothing
            log.warning("alerting: %s; its results were not written", exc)
            self.is_leader = False
            self.metrics.leader.set(0)
            return None

    def _holds_lease(self, conn: sa.Connection, now: float) -> bool:
        return repo.holds_lease(conn, LEASE, self.holder, now)

    async def _evaluate_loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self.tick()
                self._meta_answers()
            except sa.exc.OperationalError as exc:
                self._meta_down(exc)
            except Exception:  # the loop must survive a bad cycle (a store hiccup, ...)
                log.exception("alert evaluation cycle failed")
            await self._sleep(self.config.interval - (time.monotonic() - started))
        if self.is_leader:
            with contextlib.suppress(sa.exc.OperationalError):  # else it runs out by itself
                await asyncio.to_thread(repo.release_lease, self.meta, LEASE, self.holder)
            self.is_leader = False

    def _meta_down(self, exc: sa.exc.OperationalError) -> None:
        """The meta DB does not answer: stop leading (this replica cannot renew the lease, so
        another one may take it), and say so once, not with a traceback every round."""
        self.is_leader = False
        self.metrics.leader.set(0)
        if not self._meta_lost:
            self._meta_lost = True
            reason = str(exc.orig or exc).strip().splitlines()[0]
            log.warning(
                "alerting: the metadata database does not answer (%s); evaluation and "
                "delivery wait until it does",
                reason,
            )

    def _meta_answers(self) -> None:
        if self._meta_lost:
            self._meta_lost = False
            log.info("alerting: the metadata database answers again")

    async def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self.is_leader:
                    await self.deliverer.deliver_due()
            except sa.exc.OperationalError as exc:
                self._meta_down(exc)
            except Exception:
                log.exception("outbox delivery round failed")
            await self._sleep(1.0, wake=True)

    async def _report_loop(self) -> None:
        last = 0.0  # the time of the last digest: never send one twice
        while not self._stop.is_set():
            now = self.clock()
            when, period = next_run(self.config.reports, max(now, last))
            await self._sleep(when - now)
            if self._stop.is_set():
                return
            if self.clock() < when - 1.0:  # the wall clock was set back: wait again
                continue
            last = when
            if not self.is_leader:  # another replica sends it
                continue
            try:
                await self.send_digest(period, when)
            except Exception:
                log.exception("sending the %s digest failed", period)

    async def send_digest(self, period: str, now: float | None = None) -> int:
        """Put the digest of the period ending now in the outbox for the report channels."""
        r = self.config.reports
        at = self.clock() if now is None else now
        slos = list(self.config.slos)
        n = await asyncio.to_thread(
            build_digest, self.store, r.project, period, at, slos, self.base_url
        )
        names = r.channels or tuple(self.channels)
        await asyncio.to_thread(
            repo.enqueue, self.meta, [(r.project, c, n) for c in names], self.clock()
        )
        self._wake.set()
        return len(names)

    # --- operations the API and tests call ----------------------------------------------------

    async def run_cycle(
        self, now: float | None = None, force: bool = True, fenced: bool = False
    ) -> CycleResult:
        """Evaluate every rule (or, with force=False, those due) now; wake the deliverer.
        `fenced`: write the results only if this replica still holds the lease (LeaseLost)."""
        async with self._lock:
            at = self.clock() if now is None else now
            fence = self._holds_lease if fenced else None
            result = await asyncio.to_thread(self.evaluator.cycle, at, force, fence)
        if result.enqueued:
            self._wake.set()
        firing = sum(1 for s in self.evaluator.states() if s.status == "firing")
        self.metrics.firing.set(firing)
        return result

    def rules(self, project: str | None = None) -> list[Rule]:
        """Effective rules, of one project or all."""
        rules = self.evaluator.rules()
        return [r for r in rules if project is None or r.project == project]

    def rule(self, project: str, rule_id: str) -> Rule | None:
        """One effective rule of a project."""
        return next((r for r in self.rules(project) if r.id == rule_id), None)

    async def send_test(self, channel_name: str) -> dict[str, Any]:
        """Send a test notification straight to a channel; say whether it arrived."""
        channel = self.channels[channel_name]
        n = test_notification(channel_name, self.clock(), self.base_url)
        started = time.perf_counter()
        try:
            await channel.send(n)
        except DeliveryError as exc:
            self.metrics.notifications.labels(channel=channel_name, result="test_failed").inc()
            return {"ok": False, "error": self.redact(str(exc)), "retryable": exc.retryable}
        self.metrics.notifications.labels(channel=channel_name, result="test_ok").inc()
        return {"ok": True, "duration_ms": (time.perf_counter() - started) * 1000.0}

    # --- what the API reads and changes (the routes never touch the tables) -------------------

    def rule_source(self, rule_id: str) -> str:
        """ "config" for a rule of the config file (or an SLO's burn-rate rule), else "api"."""
        ids = {r.id for r in self.config.rules}
        ids.update(r.id for s in self.config.slos for r in burn_rules(s))
        return "config" if rule_id in ids else "api"

    def check_rule(self, data: Mapping[str, Any], project: str) -> Rule:
        """A rule of `project` from its API body; ValidationError naming what is wrong."""
        rule = parse_rule({**data, "project": project}, json_body=True)
        missing = rule.references({s.id: s for s in self.config.slos})
        if missing:
            raise ValidationError(f"rule {rule.id}: {missing}")
        unknown = [c for c in rule.channels if c not in self.channels]
        if unknown:
            raise ValidationError(
                f"rule {rule.id}: unknown channels {unknown}; configured: {sorted(self.channels)}"
            )
        return rule

    def save_rule(self, project: str, rule: Rule) -> None:
        """Create or replace a rule of a project (a config rule is overridden)."""
        repo.upsert_rule_row(
            self.meta, repo.RuleRow(rule.id, project, rule, None, False), self.clock()
        )

    def delete_rule(self, project: str, rule_id: str) -> None:
        """Delete a rule (a config rule is hidden until it is deleted from the file too)."""
        if self.rule_source(rule_id) == "config":
            row = repo.RuleRow(rule_id, project, None, None, True)
            repo.upsert_rule_row(self.meta, row, self.clock())
        else:
            repo.delete_rule_row(self.meta, project, rule_id)

    def set_enabled(self, project: str, rule_id: str, enabled: bool) -> None:
        """Enable or disable a rule, keeping whatever the API stored of it."""
        rows = {(r.project, r.id): r for r in repo.load_rule_rows(self.meta)}
        row = rows.get((project, rule_id))
        stored = row.rule if row is not None else None
        new = repo.RuleRow(rule_id, project, stored, enabled, False)
        repo.upsert_rule_row(self.meta, new, self.clock())

    def test_rule(self, rule: Rule) -> Decision:
        """Evaluate a rule now without changing alert state or notifying."""
        return self.evaluator.test(rule, self.clock())

    def alerts(self, project: str) -> list[AlertState]:
        """Alert states (pending, firing, recently resolved) of a project, as of the last cycle."""
        return [s for s in self.evaluator.states() if s.project == project]

    def history(self, project: str, limit: int, rule_id: str | None = None) -> list[dict[str, Any]]:
        """Alert events of a project, newest first."""
        return repo.history(self.meta, project, limit, rule_id)

    def silences(self, project: str) -> list[Silence]:
        """Active and future silences of a project."""
        return repo.load_silences(self.meta, project, self.clock())

    def add_silence(self, silence: Silence) -> Silence:
        """Store a silence; it gets an id."""
        return repo.add_silence(self.meta, silence, self.clock())

    def expire_silence(self, project: str, silence_id: str) -> Silence | None:
        """End an active or future silence now; the silence as it was, None when there is none."""
        now = self.clock()
        old = next((s for s in self.silences(project) if s.id == silence_id), None)
        if old is None or not repo.expire_silence(self.meta, project, silence_id, now):
            return None
        return old

    def slos(self, project: str) -> list[Slo]:
        """The SLOs of a project."""
        return [s for s in self.config.slos if s.project == project]

    def slo_status(self, slo: Slo, series: bool = True) -> dict[str, Any]:
        """An SLO now: SLI, budget left, burn rates, and (with `series`) its burn-down."""
        return slo_status(self.store, slo, self.clock(), series=series)

    def notifications(self, project: str, limit: int) -> list[dict[str, Any]]:
        """The outbox of a project, newest first, every delivery attempt with it."""
        items = repo.notification_log(self.meta, project, limit)
        for item in items:  # errors stored before redaction existed, too
            for entry in [item, *item["attempt_log"]]:
                for field in ("last_error", "error"):
                    if isinstance(entry.get(field), str):
                        entry[field] = self.redact(entry[field])
        return items


def build_alerting(
    config: Config,
    store: Store,
    meta: MetaStore,
    registry: CollectorRegistry,
    *,
    redactor: Redactor,
    projects: Callable[[], Iterable[str]],
    clock: Callable[[], float] = time.time,
    signals: Signals = Signals(),
) -> AlertingEngine | None:
    """The engine for a server's configuration and stores (None when `alerting.enabled` is
    false). `redactor` learns the channels' secrets; `projects` names the projects that rules
    of project "*" apply to; `signals` are the metric and log stores PromQL and log rules read."""
    from watchkeeper.alerting.channels import build_channel, parse_channel_specs, secret_values

    alerting = alerting_of(config)
    if not alerting.enabled:
        return None
    try:
        specs = parse_channel_specs(list(alerting.channels))
        _check_channel_names(alerting, {s.name for s in specs})
    except WatchkeeperError as exc:
        raise ConfigError(f"{config.source}: alerting: {exc}") from None
    for spec in specs:
        redactor.add(*secret_values(spec))
    _warn_clear_secrets(alerting.channels, specs, config.source)
    http = httpx.AsyncClient(timeout=30.0)
    channels = {s.name: build_channel(s, http) for s in specs}
    return AlertingEngine(
        alerting,
        store,
        meta,
        registry,
        channels,
        channel_specs={s.name: s for s in specs},
        clock=clock,
        base_url=config.base_url,
        http=http,
        projects=projects,
        redact=redactor.scrub,
        signals=signals,
    )


def _warn_clear_secrets(
    items: Iterable[Mapping[str, Any]], specs: Iterable[Any], source: str
) -> None:
    """Warn about each channel secret written in clear in the configuration (neither a
    `${NAME}` reference nor sealed), naming the field, never its value."""
    from watchkeeper.alerting.channels import secret_fields
    from watchkeeper.vault import is_sealed

    for item, spec in zip(items, specs, strict=True):
        for name in secret_fields(spec):
            raw = item.get(name)
            if isinstance(raw, str) and "${" not in raw and not is_sealed(raw):
                log.warning(
                    "%s: channel %s: %s is written in clear; seal it (watchkeeper secrets "
                    "seal) or reference the environment as ${NAME}",
                    source,
                    spec.name,
                    name,
                )


def _check_channel_names(config: AlertingConfig, known: set[str]) -> None:
    named = [(f"rule {r.id}", c) for r in config.rules for c in r.channels]
    named += [(f"slo {s.id}", c) for s in config.slos for c in s.channels]
    named += [("routes", c) for route in config.routes for c in route.channels]
    named += [("reports", c) for c in config.reports.channels]
    for where, name in named:
        if name not in known:
            raise ConfigError(
                f"{where} names channel {name!r}, which is not configured; "
                f"add it under alerting.channels (known: {sorted(known) or 'none'})"
            )
