"""The alerting engine: the I/O edge around the pure evaluation and state machine.

One evaluation cycle (in a worker thread, since the store and meta DB block): query the store
per rule, `evaluate`, `transition`, persist changed states, then mute (silences, maintenance,
inhibition, hourly cap) and enqueue the remaining events in the persistent outbox. The
delivery worker (`_delivery.py`) drains the outbox.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from watchkeeper.alerting import _repo as repo
from watchkeeper.alerting._config import AlertingConfig, Rule, Slo
from watchkeeper.alerting._evaluate import Decision, alert_labels, evaluate, fingerprint
from watchkeeper.alerting._fetch import (
    BaselineCache,
    CycleQueries,
    Reader,
    Signals,
    example_traces,
    fetch,
)
from watchkeeper.alerting._metrics import AlertMetrics
from watchkeeper.alerting._notification import Notification
from watchkeeper.alerting._notify import build_notification, held_line, held_summary
from watchkeeper.alerting._policy import (
    Silence,
    inhibited,
    maintenance_for,
    recent,
    route,
    silenced_by,
    under_cap,
)
from watchkeeper.alerting._slo import burn_rules
from watchkeeper.alerting._state import AlertState, Event, Timing, transition
from watchkeeper.store import Store
from watchkeeper.store.meta import MetaStore

log = logging.getLogger("watchkeeper.alerting")
Outgoing = tuple[str, str, Notification]  # project, channel, notification
RuleKey = tuple[str, str]  # project, rule id
EVERY_PROJECT = "*"
PRUNE_EVERY_S = 3600.0


MAX_AUTO_EVERY_S = 300.0


def evaluation_period(rule: Rule, interval: float) -> float:
    """Seconds between evaluations of a rule: its own setting, else window/60, clamped."""
    if rule.evaluate_every is not None:
        return max(interval, rule.evaluate_every)
    return min(max(interval, rule.window / 60.0), max(interval, MAX_AUTO_EVERY_S))


def timing(rule: Rule) -> Timing:
    """The state-machine durations of a rule."""
    return Timing(rule.for_, rule.keep_firing_for, rule.repeat_interval)


#: Whether this replica may still write a cycle's results, asked inside their transaction.
Fence = Callable[[sa.Connection, float], bool]


class LeaseLost(Exception):
    """The evaluation lease passed to another replica before a cycle's results were written."""


@dataclass
class CycleResult:
    """What one evaluation cycle did (for tests, the bench and logs)."""

    evaluated: int = 0
    errors: int = 0
    events: list[Event] = field(default_factory=list)
    enqueued: list[Outgoing] = field(default_factory=list)
    muted: dict[str, str] = field(default_factory=dict)  # fingerprint → reason


class RuleEvaluator:
    """Runs evaluation cycles against a store and the meta DB; keeps alert state in memory."""

    def __init__(
        self,
        config: AlertingConfig,
        store: Store,
        meta: MetaStore,
        metrics: AlertMetrics,
        *,
        channel_names: Sequence[str] = (),
        channel_severities: Mapping[str, Sequence[str]] | None = None,
        base_url: str = "",
        projects: Callable[[], Iterable[str]] | None = None,
        signals: Signals = Signals(),
    ) -> None:
        self.config = config
        self._store = store
        self._signals = signals
        self._meta = meta
        self._metrics = metrics
        self._channels = tuple(channel_names)
        self._severities = dict(channel_severities or {})
        self._base_url = base_url
        self._projects = projects or (lambda: ("default",))
        self._states: dict[str, AlertState] = repo.load_states(meta)
        # What API threads read: replaced whole after each cycle, never mutated in place.
        self._published: tuple[AlertState, ...] = tuple(self._states.values())
        self._sent: dict[RuleKey, list[float]] = {}
        self._held: dict[RuleKey, list[str]] = {}
        self._baselines: BaselineCache = {}
        self.last_queries = 0  # store queries of the last cycle (bench and logs)
        self._pruned_at = 0.0
        self._evaluated: dict[RuleKey, tuple[float, Rule]] = {}  # when, and the rule as it was

    # --- rules and SLOs ----------------------------------------------------------------------

    def slos(self) -> dict[str, Slo]:
        """Every SLO of the configuration by id."""
        return {s.id: s for s in self.config.slos}

    def rules(self) -> list[Rule]:
        """The effective rules: config and starter rules, SLO burn rules, then the API's.

        A rule of project "*" becomes one rule per project; the API may override, disable or
        hide it in one project without touching the others.
        """
        projects = sorted(set(self._projects()))
        by_key: dict[RuleKey, Rule] = {}
        for own in [*self.config.rules, *(r for s in self.config.slos for r in burn_rules(s))]:
            for p in projects if own.project == EVERY_PROJECT else [own.project]:
                by_key[(p, own.id)] = own.model_copy(update={"project": p})
        for row in repo.load_rule_rows(self._meta):
            key = (row.project, row.id)
            if row.deleted:
                by_key.pop(key, None)
                continue
            rule = row.rule or by_key.get(key)
            if rule is None:
                continue
            if row.enabled is not None:
                rule = rule.model_copy(update={"enabled": row.enabled})
            by_key[key] = rule
        return [r for r in by_key.values() if self._applies(r)]

    def _applies(self, rule: Rule) -> bool:
        """Whether the project holds every metric the rule needs (starter exporter rules)."""
        needs, reader = rule.needs_metrics(), self._signals.metrics
        if not needs:
            return True
        return reader is not None and all(reader.has_metric(rule.project, m) for m in needs)

    def reload(self) -> None:
        """Read alert state back from the meta DB (after another replica evaluated)."""
        self._states = repo.load_states(self._meta)
        self._published = tuple(self._states.values())

    def states(self) -> list[AlertState]:
        """Alert states (pending, firing, recently resolved) as of the last cycle."""
        return list(self._published)

    # --- one cycle ---------------------------------------------------------------------------

    def test(self, rule: Rule, now: float) -> Decision:
        """Evaluate a rule now without touching state or notifying."""
        data = fetch(self._store, rule, now, self.slos(), signals=self._signals)
        return evaluate(rule, data, now)

    def cycle(self, now: float, force: bool = True, fence: Fence | None = None) -> CycleResult:
        """Evaluate enabled rules (all, or those due), persist state, enqueue notifications;
        with a `fence`, write only if it holds (LeaseLost otherwise)."""
        result = CycleResult()
        rules = {(r.project, r.id): r for r in self.rules() if r.enabled}
        before = dict(self._states)
        queries = CycleQueries(self._store)
        for key, rule in rules.items():
            if not self._due(key, rule, now, force):
                continue
            decision = self._evaluate(queries, rule, now, result)
            if decision is not None:
                result.events.extend(self._apply(queries, rule, decision, now))
        self.last_queries = queries.asked
        self._forget(rules, now)
        changed = [s for fp, s in self._states.items() if before.get(fp) != s]
        gone = [fp for fp in before if fp not in self._states]
        # One transaction: a replica that dies mid-cycle leaves the state, the history and
        # the outbox as they were, or all three written (never a firing state whose
        # notification is lost). Behind the fence: only while this replica holds the lease.
        with self._meta.transaction() as conn:
            if fence is not None and not fence(conn, now):
                self._states = before
                raise LeaseLost("another replica took the evaluation lease during this cycle")
            repo.save_states(self._meta, changed, gone)
            self._notify(rules, result, now)
        self._published = tuple(self._states.values())
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            repo.prune(self._meta, now - self.config.history_retention)
        return result

    def _due(self, key: RuleKey, rule: Rule, now: float, force: bool) -> bool:
        last = self._evaluated.get(key)
        # A little slack so a cycle that starts a hair early does not skip a whole period;
        # an edited rule is due at once.
        slack = 0.5 * self.config.interval
        period = evaluation_period(rule, self.config.interval)
        if not force and last is not None and last[1] == rule and now - last[0] < period - slack:
            return False
        self._evaluated[key] = (now, rule)
        return True

    def _evaluate(
        self, queries: Reader, rule: Rule, now: float, result: CycleResult
    ) -> Decision | None:
        started = time.perf_counter()
        try:
            data = fetch(queries, rule, now, self.slos(), self._baselines, self._signals)
            decision = evaluate(rule, data, now)
        except Exception:  # one broken rule or store hiccup must not stop the others
            log.exception("alert rule %s failed to evaluate", rule.id)
            self._metrics.evaluations.labels(result="error").inc()
            result.errors += 1
            return None
        finally:
            self._metrics.evaluation_seconds.observe(time.perf_counter() - started)
        self._metrics.evaluations.labels(result="ok").inc()
        result.evaluated += 1
        return decision

    def _apply(self, q: Reader, rule: Rule, decision: Decision, now: float) -> list[Event]:
        events: list[Event] = []
        seen = set()
        for obs in decision.observations:
            fp = fingerprint(rule.id, obs.labels, rule.project)
            seen.add(fp)
            prev = self._states.get(fp) or AlertState(
                fp, rule.id, rule.project, alert_labels(rule, obs.labels)
            )
            events.extend(self._step(q, rule, prev, obs, now))
        for fp, state in list(self._states.items()):
            active = state.status in ("pending", "firing")
            ours = state.rule_id == rule.id and state.project == rule.project
            if ours and fp not in seen and active:
                events.extend(self._step(q, rule, state, None, now))
        return events

    def _step(self, q: Reader, rule: Rule, prev: AlertState, obs: Any, now: float) -> list[Event]:
        state, events = transition(prev, obs, now, timing(rule))
        if any(e.kind == "firing" for e in events):
            state = self._with_traces(q, rule, state, now)
            events = [dataclasses.replace(e, state=state) for e in events]
        if state.status == "inactive":
            self._states.pop(state.fingerprint, None)
        else:
            self._states[state.fingerprint] = state
        return events

    def _with_traces(self, q: Reader, rule: Rule, state: AlertState, now: float) -> AlertState:
        group: dict[str, str] = {k: v for k, v in state.labels.items() if k == rule.group_by}
        try:
            ids = example_traces(q, rule, group, now, self.config.example_traces, self.slos())
        except Exception:  # examples are a help; the alert goes out without them
            log.exception("example traces for rule %s failed", rule.id)
            ids = ()
        return dataclasses.replace(state, trace_ids=ids)

    def _forget(self, rules: Mapping[RuleKey, Rule], now: float) -> None:
        for key in [k for k in self._evaluated if k not in rules]:
            del self._evaluated[key]
        keep = self.config.resolved_retention
        for fp, state in list(self._states.items()):
            stale = state.status == "resolved" and now - (state.resolved_at or now) > keep
            if (state.project, state.rule_id) not in rules or stale:
                del self._states[fp]

    # --- muting and enqueueing ---------------------------------------------------------------

    def _silences(self, now: float) -> list[Silence]:
        own = [
            Silence(f"config-{i}", s.matchers, s.starts_at, s.ends_at, s.comment, s.created_by)
            for i, s in enumerate(self.config.silences)
        ]
        return own + repo.load_silences(self._meta, None, now)

    def _mute_reason(
        self,
        event: Event,
        silences: Sequence[Silence],
        critical: Sequence[tuple[str, Mapping[str, str]]],
        now: float,
    ) -> str | None:
        labels = event.state.labels
        same_project = [c for p, c in critical if p == event.state.project]
        silence = silenced_by(
            [s for s in silences if s.project == event.state.project], labels, now
        )
        if silence is not None:
            return f"silenced by {silence.id}"
        window = maintenance_for(self.config.maintenance, labels, now)
        if window is not None:
            return f"maintenance {window.name}".strip()
        if inhibited(labels, same_project, self.config.inhibit_equal):
            return "inhibited by a critical alert"
        return None

    def _notify(self, rules: Mapping[RuleKey, Rule], result: CycleResult, now: float) -> None:
        silences = self._silences(now) if result.events else []
        critical = [
            (s.project, s.labels)
            for s in self._states.values()
            if s.status == "firing" and s.labels.get("severity") == "critical"
        ]
        self._release_held(rules, now, result)  # last hour's summary before new events
        history = []
        for event in result.events:
            rule = rules[(event.state.project, event.state.rule_id)]
            reason = self._mute_reason(event, silences, critical, now)
            if reason is None:
                reason = self._enqueue(rule, event, now, result)
            if reason is not None:
                result.muted[event.state.fingerprint] = reason
            history.append(_history_row(rule, event, reason))
        repo.append_history(self._meta, history)
        if result.enqueued:
            repo.enqueue(self._meta, result.enqueued, now)
            # Bounded: past max_outbox pending entries the oldest go (counted, logged).
            dropped = repo.drop_oldest(self._meta, self.config.max_outbox)
            if dropped:
                log.error("outbox full: dropped the %d oldest undelivered notifications", dropped)
                self._metrics.outbox_dropped.inc(dropped)

    def _channels_for(self, rule: Rule, labels: Mapping[str, str]) -> tuple[str, ...]:
        default = self.config.default_channels
        chosen = route(labels, rule.channels, self.config.routes, default or self._channels)
        return tuple(
            c for c in chosen if rule.severity in self._severities.get(c, (rule.severity,))
        )

    def _enqueue(self, rule: Rule, event: Event, now: float, result: CycleResult) -> str | None:
        cap = self.config.max_notifications_per_rule_per_hour
        key = (rule.project, rule.id)
        sent = self._sent[key] = recent(self._sent.get(key, []), now)
        if not under_cap(sent, now, cap):
            self._held.setdefault(key, []).append(held_line(event.kind, event.state.labels))
            return f"held back by the cap of {cap} per hour"
        channels = self._channels_for(rule, event.state.labels)
        if not channels:
            return "no channel takes it (configure alerting.channels or routes)"
        sent.append(now)
        resolved = event.kind == "resolved"
        n = build_notification(
            rule, event.state, "resolved" if resolved else "firing", self._base_url
        )
        result.enqueued.extend((rule.project, channel, n) for channel in channels)
        return None

    def _release_held(self, rules: Mapping[RuleKey, Rule], now: float, result: CycleResult) -> None:
        cap = self.config.max_notifications_per_rule_per_hour
        for key, held in list(self._held.items()):
            rule = rules.get(key)
            sent = recent(self._sent.get(key, []), now)
            if rule is None or not under_cap(sent, now, cap):
                continue
            n = held_summary(rule, held, now, cap)
            for channel in self._channels_for(rule, {"rule": rule.id, **rule.labels}):
                result.enqueued.append((rule.project, channel, n))
            self._sent[key] = [*sent, now]
            del self._held[key]


def _history_row(rule: Rule, event: Event, muted: str | None) -> dict[str, Any]:
    s = event.state
    return {
        "at": event.at,
        "project": s.project,
        "rule_id": rule.id,
        "fingerprint": s.fingerprint,
        "event": event.kind,
        "severity": rule.severity,
        "labels": json.dumps(dict(s.labels), sort_keys=True),
        "value": s.value,
        "threshold": s.threshold,
        "muted": muted,
    }
