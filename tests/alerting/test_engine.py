"""The engine against real parts: DuckDB store, the meta DB (SQLite and PostgreSQL: the
`meta_url` fixture), webhook channel, HTTP receiver.

Time is a fake clock passed to the engine; cycles and delivery rounds are driven by the test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.alerting._receiver import Receiver
from tests.alerting._spans import requests
from watchkeeper.alerting import AlertingEngine, load_alerting_config
from watchkeeper.alerting import _repo as repo
from watchkeeper.alerting._engine import LeaseLost
from watchkeeper.alerting._policy import Silence
from watchkeeper.alerting.channels import WebhookChannel, parse_channel_spec
from watchkeeper.alerting.channels._webhook import WebhookSpec
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.meta import MetaStore

T0 = 1_800_000_000.0
TIMEOUT_RULE = {
    "id": "timeouts",
    "kind": "outcome_ratio",
    "outcomes": ["timeout"],
    "threshold": "10%",
    "group_by": "service",
    "severity": "critical",
    "window": "5m",
    "annotations": {"summary": "{service}: {value} timed out", "runbook_url": "http://rb"},
}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[DuckDBStore]:
    s = DuckDBStore(None)
    yield s
    s.close()


def make_engine(
    meta_url: str, store: DuckDBStore, receiver: Receiver, clock: Clock, **cfg: Any
) -> AlertingEngine:
    meta = MetaStore(meta_url)
    meta.create_all()
    config = load_alerting_config(
        {"starter_rules": False, "rules": [TIMEOUT_RULE], "retry_base": 2, **cfg}
    )
    spec = parse_channel_spec({"type": "webhook", "name": "hook", "url": receiver.url})
    assert isinstance(spec, WebhookSpec)
    return AlertingEngine(
        config,
        store,
        meta,
        CollectorRegistry(),
        {"hook": WebhookChannel(spec)},
        channel_specs={"hook": spec},
        clock=clock,
        base_url="http://wk.test",
    )


@pytest.fixture
async def engine(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> AsyncIterator[AlertingEngine]:
    e = make_engine(meta_url, store, receiver, Clock(T0))
    yield e
    await e.stop()
    e.meta.close()


@pytest.mark.slow
async def test_fires_with_traces_then_resolves(
    engine: AlertingEngine, store: DuckDBStore, receiver: Receiver
) -> None:
    clock: Clock = engine.clock  # type: ignore[assignment]
    store.write(requests(T0, 100, timeouts=30, service="chat"))
    store.write(requests(T0, 100, timeouts=2, service="search"))
    result = await engine.run_cycle()
    assert [(e.kind, e.state.labels["service"]) for e in result.events] == [("firing", "chat")]
    assert await engine.deliverer.deliver_due() == 1
    [body] = receiver.received
    assert body["status"] == "firing" and body["severity"] == "critical"
    assert body["summary"] == "chat: 30% timed out"
    assert body["value"] == pytest.approx(30.0) and body["threshold"] == pytest.approx(10.0)
    assert body["labels"]["service"] == "chat" and body["annotations"]["runbook_url"] == "http://rb"
    assert len(body["traces"]) == 5
    assert body["traces"][0]["url"].startswith("http://wk.test/traces/")
    # Nothing new while it keeps firing.
    clock.now = T0 + 5
    assert (await engine.run_cycle(clock.now)).events == []
    # Healthy traffic later: the window no longer holds the timeouts.
    clock.now = T0 + 400
    store.write(requests(clock.now, 100, service="chat"))
    result = await engine.run_cycle()
    assert [e.kind for e in result.events] == ["resolved"]
    await engine.deliverer.deliver_due()
    assert [b["status"] for b in receiver.received] == ["firing", "resolved"]
    assert receiver.received[1]["ended_at"] is not None
    events = repo.history(engine.meta, "default")
    assert [(h["event"], h["muted"]) for h in events] == [("resolved", None), ("firing", None)]


@pytest.mark.slow
async def test_channel_down_then_back_across_a_restart(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    clock = Clock(T0)
    first = make_engine(meta_url, store, receiver, clock)
    receiver.status, receiver.retry_after = 503, "7"
    store.write(requests(T0, 50, timeouts=25))
    await first.run_cycle()
    assert await first.deliverer.deliver_due() == 0
    [entry] = repo.pending(first.meta, 10)
    assert entry.attempts == 1 and entry.next_attempt_at == pytest.approx(T0 + 7)  # Retry-After
    clock.now = T0 + 3
    assert await first.deliverer.deliver_due() == 0 and receiver.refused == 1  # not due yet
    await first.stop()
    first.meta.close()

    # A new engine on the same meta DB (a restart): the alert is still firing, not re-fired,
    # and the outbox entry is delivered once the receiver answers again.
    receiver.status = 200
    clock.now = T0 + 8
    second = make_engine(meta_url, store, receiver, clock)
    assert [s.status for s in second.evaluator.states()] == ["firing"]
    assert (await second.run_cycle()).events == []
    assert await second.deliverer.deliver_due() == 1
    assert [b["status"] for b in receiver.received] == ["firing"]
    log = repo.notification_log(second.meta, "default")
    assert log[0]["state"] == "delivered"
    assert [a["result"] for a in log[0]["attempt_log"]] == ["retry", "ok"]
    await second.stop()


@pytest.mark.slow
async def test_refused_for_good_is_not_retried(
    engine: AlertingEngine, store: DuckDBStore, receiver: Receiver
) -> None:
    receiver.status = 400
    store.write(requests(T0, 50, timeouts=25))
    await engine.run_cycle()
    await engine.deliverer.deliver_due()
    assert repo.pending(engine.meta, 10) == []
    assert repo.notification_log(engine.meta, "default")[0]["state"] == "failed"


@pytest.mark.slow
async def test_silence_mutes_and_history_says_why(
    engine: AlertingEngine, store: DuckDBStore, receiver: Receiver
) -> None:
    from watchkeeper.alerting import Matcher

    matcher = Matcher.model_validate("service=chat")
    repo.add_silence(engine.meta, Silence("", (matcher,), T0 - 1, T0 + 60), T0)
    store.write(requests(T0, 50, timeouts=25))
    result = await engine.run_cycle()
    assert [e.kind for e in result.events] == ["firing"] and result.enqueued == []
    [h] = repo.history(engine.meta, "default")
    assert h["muted"].startswith("silenced by ")


@pytest.mark.slow
async def test_inhibition_and_hourly_cap(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    warn = {**TIMEOUT_RULE, "id": "timeouts-warn", "severity": "warning", "threshold": "5%"}
    errors = {
        "id": "any-spans",
        "kind": "count",
        "group_by": "service",
        "threshold": 0,
        "repeat_interval": "1m",
    }
    clock = Clock(T0)
    e = make_engine(
        meta_url, store, receiver, clock, rules=[TIMEOUT_RULE, warn, errors],
        max_notifications_per_rule_per_hour=2,
    )  # fmt: skip
    for i, svc in enumerate("abcd"):
        store.write(requests(T0, 20, timeouts=10 if i == 0 else 0, service=svc))
    result = await e.run_cycle()
    muted = {(ev.state.rule_id, ev.state.labels["service"]): result.muted.get(ev.state.fingerprint)
             for ev in result.events}  # fmt: skip
    assert muted[("timeouts", "a")] is None
    assert muted[("timeouts-warn", "a")] == "inhibited by a critical alert"
    assert [muted[("any-spans", s)] for s in "abcd"] == [
        "inhibited by a critical alert", None, None, "held back by the cap of 2 per hour"
    ]  # fmt: skip
    # An hour later the cap frees and a summary of what was held goes out.
    clock.now = T0 + 3601
    for svc in "abcd":
        store.write(requests(clock.now, 5, service=svc))
    result = await e.run_cycle()
    summaries = [n for _, _, n in result.enqueued if n.kind == "summary"]
    assert len(summaries) == 1 and "firing: rule=any-spans" in summaries[0].body_markdown
    await e.stop()


@pytest.mark.slow
async def test_metrics_are_exposed(engine: AlertingEngine, store: DuckDBStore) -> None:
    from prometheus_client import generate_latest

    store.write(requests(T0, 50, timeouts=25))
    await engine.run_cycle()
    await engine.deliverer.deliver_due()
    text = generate_latest(engine.registry)
    assert b'watchkeeper_alert_evaluations_total{result="ok"} 1.0' in text
    assert b'watchkeeper_alert_notifications_total{channel="hook",result="ok"} 1.0' in text
    assert b"watchkeeper_alert_outbox_depth 0.0" in text
    assert b"watchkeeper_alert_evaluation_seconds_count 1.0" in text


@pytest.mark.slow
async def test_digest_goes_through_the_outbox(
    engine: AlertingEngine, store: DuckDBStore, receiver: Receiver
) -> None:
    store.write(requests(T0, 200, timeouts=20, errors=10, service="chat"))
    assert await engine.send_digest("daily", T0) == 1
    assert await engine.deliverer.deliver_due() == 1
    [body] = receiver.received
    assert body["kind"] == "digest"
    assert body["summary"].startswith("200 requests, 10.00% timeouts, 5.00% errors")
    assert "| Requests | 200 |" in body["body_markdown"]


def test_outbox_is_bounded(meta_url: str) -> None:
    from watchkeeper.alerting._notify import test_notification

    meta = MetaStore(meta_url)
    meta.create_all()
    items = [("default", "hook", test_notification(f"c{i}", T0, "")) for i in range(150)]
    repo.enqueue(meta, items, T0)
    assert repo.drop_oldest(meta, 100) == 50
    assert repo.depth(meta) == 100
    assert repo.pending(meta, 1)[0].notification.rule_name == "Test of channel c50"
    meta.close()


@pytest.mark.slow
async def test_old_history_and_deliveries_are_pruned(
    engine: AlertingEngine, store: DuckDBStore
) -> None:
    store.write(requests(T0, 50, timeouts=25))
    await engine.run_cycle()
    await engine.deliverer.deliver_due()
    assert repo.history(engine.meta, "default") and repo.notification_log(engine.meta, "default")
    assert repo.prune(engine.meta, T0 - 1) == 0
    assert repo.prune(engine.meta, T0 + 31 * 86400) == 3  # history, outbox entry, attempt
    assert repo.history(engine.meta, "default") == []
    assert repo.notification_log(engine.meta, "default") == []


@pytest.mark.slow
async def test_one_replica_leads_and_another_takes_over(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    clock = Clock(T0)
    a = make_engine(meta_url, store, receiver, clock)
    b = make_engine(meta_url, store, receiver, clock)  # same meta DB: another replica
    store.write(requests(T0, 50, timeouts=25))
    first = await a.tick()
    assert first is not None and [e.kind for e in first.events] == ["firing"]
    assert await b.tick() is None and not b.is_leader
    # The leader stops cleanly: the other takes over at once, with the firing state.
    await a.start()
    await a.stop()
    clock.now = T0 + 5
    taken = await b.tick()
    assert taken is not None and taken.events == [] and b.is_leader
    assert [s.status for s in b.evaluator.states()] == ["firing"]
    assert await a.tick() is None  # the old leader does not get it back while b renews


@pytest.mark.slow
async def test_a_silent_leader_loses_the_lease_after_its_ttl(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    clock = Clock(T0)
    a = make_engine(meta_url, store, receiver, clock, lease_ttl=30)
    b = make_engine(meta_url, store, receiver, clock, lease_ttl=30)
    assert await a.tick() is not None
    clock.now = T0 + 29
    assert await b.tick() is None
    clock.now = T0 + 30  # a crashed: no renewal
    assert await b.tick() is not None


@pytest.mark.slow
async def test_a_leader_that_lost_its_lease_mid_cycle_writes_nothing(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    clock = Clock(T0)
    a = make_engine(meta_url, store, receiver, clock, lease_ttl=30)
    b = make_engine(meta_url, store, receiver, clock, lease_ttl=30)
    assert await a.tick() is not None
    clock.now = T0 + 30  # a stalled past its lease (a long cycle, a paused process)
    assert await b.tick() is not None and b.is_leader
    store.write(requests(clock.now, 50, timeouts=25))
    with pytest.raises(LeaseLost):  # a's cycle ends now: its results are fenced off
        await a.run_cycle(fenced=True)
    assert a.evaluator.states() == [] and repo.load_states(a.meta) == {}
    assert repo.pending(a.meta, 10) == []
    clock.now += 5  # b's next cycle
    taken = await b.tick()
    assert taken is not None and [e.kind for e in taken.events] == ["firing"]
    assert len(repo.pending(b.meta, 10)) == 1  # notified once, by the leader


@pytest.mark.slow
async def test_a_leader_that_loses_the_meta_db_stops_leading_and_says_so_once(
    postgres: Any, store: DuckDBStore, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres.new_database()
    engine = make_engine(url, store, receiver, Clock(T0), interval=1)
    assert await engine.tick() is not None and engine.is_leader
    postgres.drop_database(url)  # as good as a database that went away
    await engine.start()
    for _ in range(100):  # its first rounds, up to 5 s
        if not engine.is_leader and len(caplog.records) >= 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # a few more failing rounds of delivery and evaluation
    await engine.stop()
    assert not engine.is_leader
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "the metadata database does not answer" in said[0], said
    assert not any(r.exc_info for r in caplog.records)  # no traceback
    engine.meta.close()


@pytest.mark.slow
async def test_two_replicas_delivering_at_once_send_each_notification_once(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    from watchkeeper.alerting._notify import test_notification

    clock = Clock(T0)
    a = make_engine(meta_url, store, receiver, clock)
    b = make_engine(meta_url, store, receiver, clock)  # the same outbox
    items = [("default", "hook", test_notification(f"c{i}", T0, "")) for i in range(20)]
    repo.enqueue(a.meta, items, T0)
    sent = await asyncio.gather(a.deliverer.deliver_due(), b.deliverer.deliver_due())
    assert sum(sent) == 20
    names = sorted(body["rule_name"] for body in receiver.received)
    assert names == sorted(f"Test of channel c{i}" for i in range(20))
    assert repo.depth(a.meta) == 0


@pytest.mark.slow
async def test_a_backlog_on_a_down_channel_does_not_block_another(
    meta_url: str, receiver: Receiver
) -> None:
    from tests.server._process import free_port
    from watchkeeper.alerting._delivery import Deliverer
    from watchkeeper.alerting._metrics import AlertMetrics
    from watchkeeper.alerting._notify import test_notification

    meta = MetaStore(meta_url)
    meta.create_all()
    specs = {
        "down": parse_channel_spec({"type": "webhook", "name": "down",
                                    "url": f"http://127.0.0.1:{free_port()}/x"}),
        "hook": parse_channel_spec({"type": "webhook", "name": "hook", "url": receiver.url}),
    }  # fmt: skip
    channels = {n: WebhookChannel(s) for n, s in specs.items() if isinstance(s, WebhookSpec)}
    backlog = [("default", "down", test_notification(f"d{i}", T0, "")) for i in range(300)]
    repo.enqueue(meta, [*backlog, ("default", "hook", test_notification("h", T0, ""))], T0)
    config = load_alerting_config({"starter_rules": False})
    deliverer = Deliverer(config, meta, channels, AlertMetrics(CollectorRegistry()), Clock(T0))
    assert await deliverer.deliver_due() == 1
    assert [b["rule_name"] for b in receiver.received] == ["Test of channel h"]
    assert repo.depth(meta) == 300
    down = repo.notification_log(meta, "default", limit=1000)
    assert sum(1 for e in down if e["attempts"]) == 2  # one try at each channel
    meta.close()


@pytest.mark.slow
async def test_the_daily_digest_goes_out_at_its_time(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    from datetime import UTC, datetime

    due = datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp()
    clock = Clock(due - 0.5)  # half a second before 08:00
    e = make_engine(meta_url, store, receiver, clock, reports={"daily": True, "at": "08:00"})
    store.write(requests(due - 60, 10, service="chat"))
    await e.start()
    try:
        for _ in range(150):  # the loops run on this event loop: wait without blocking it
            if receiver.received:
                break
            await asyncio.sleep(0.1)
        [body] = receiver.received
        assert body["kind"] == "digest" and body["summary"].startswith("10 requests")
        assert body["started_at"] == "2027-01-15T08:00:00.000Z"
    finally:
        await e.stop()
    assert len(receiver.received) == 1  # once, though the clock still reads 07:59:59.5


@pytest.mark.parametrize(
    ("window", "every", "interval", "period"),
    [("5m", None, 5, 5.0), ("10m", None, 5, 10.0), ("1h", None, 5, 60.0), ("3d", None, 5, 300.0),
     ("5s", None, 1, 1.0), ("1h", "15s", 5, 15.0), ("1h", "1s", 5, 5.0), ("3d", None, 600, 600.0)],
)  # fmt: skip
def test_evaluation_period(window: str, every: str | None, interval: float, period: float) -> None:
    from watchkeeper.alerting import parse_rule
    from watchkeeper.alerting._engine import evaluation_period

    data = {"id": "r", "kind": "count", "window": window}
    rule = parse_rule(data if every is None else {**data, "evaluate_every": every})
    assert evaluation_period(rule, interval) == period


@pytest.mark.slow
async def test_long_windows_are_evaluated_less_often(
    meta_url: str, store: DuckDBStore, receiver: Receiver
) -> None:
    rules = [{"id": "short", "kind": "count", "window": "5m"},
             {"id": "long", "kind": "count", "window": "1h"}]  # fmt: skip
    e = make_engine(meta_url, store, receiver, Clock(T0), rules=rules)
    counts = [(await e.run_cycle(T0 + 5 * k, force=False)).evaluated for k in range(13)]
    assert counts == [2] + [1] * 11 + [2]  # the 1h rule every 60 s, the 5m rule every 5 s
    assert (await e.run_cycle(T0 + 66)).evaluated == 2  # forced (API, tests): every rule
