"""Reading and writing the alerting tables (the I/O edge of the engine's metadata)."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from watchkeeper.alerting._config import Matcher, Rule, parse_rule, rule_to_data
from watchkeeper.alerting._notification import Notification
from watchkeeper.alerting._policy import Silence
from watchkeeper.alerting._state import AlertState
from watchkeeper.alerting._tables import (
    alert_history,
    alert_rules,
    alert_state,
    attempts,
    lease,
    outbox,
    silences,
)
from watchkeeper.store.meta import MetaStore


def encode_notification(n: Notification) -> str:
    """A notification as JSON (the outbox keeps it verbatim)."""
    return json.dumps(dataclasses.asdict(n), separators=(",", ":"))


def decode_notification(text: str) -> Notification:
    """The notification an outbox row holds."""
    data: dict[str, Any] = json.loads(text)
    data["trace_ids"] = tuple(data.get("trace_ids", ()))
    return Notification(**data)


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A rule row of the API: a whole rule, or only an enabled flag / deletion of a file rule."""

    id: str
    project: str
    rule: Rule | None
    enabled: bool | None
    deleted: bool


def load_rule_rows(meta: MetaStore) -> list[RuleRow]:
    """Every rule row written through the API."""
    with meta.engine.connect() as conn:
        rows = conn.execute(sa.select(alert_rules)).all()
    return [
        RuleRow(
            r.id,
            r.project,
            parse_rule(json.loads(r.data)) if r.data else None,
            r.enabled,
            bool(r.deleted),
        )
        for r in rows
    ]


def upsert_rule_row(meta: MetaStore, row: RuleRow, now: float) -> None:
    """Write one rule row (insert or replace)."""
    values = {
        "data": json.dumps(rule_to_data(row.rule)) if row.rule else None,
        "enabled": row.enabled,
        "deleted": row.deleted,
        "updated_at": now,
    }
    with meta.transaction() as conn:
        which = (alert_rules.c.id == row.id, alert_rules.c.project == row.project)
        done = conn.execute(alert_rules.update().where(*which).values(values))
        if not done.rowcount:
            conn.execute(alert_rules.insert().values(id=row.id, project=row.project, **values))


def delete_rule_row(meta: MetaStore, project: str, rule_id: str) -> None:
    """Forget a rule row of a project."""
    with meta.transaction() as conn:
        conn.execute(
            alert_rules.delete().where(
                alert_rules.c.id == rule_id, alert_rules.c.project == project
            )
        )


# --- alert state and history ---------------------------------------------------------------


def _state_values(s: AlertState) -> dict[str, Any]:
    values = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
    values["labels"] = json.dumps(dict(s.labels), sort_keys=True)
    values["trace_ids"] = json.dumps(list(s.trace_ids))
    return values


def load_states(meta: MetaStore) -> dict[str, AlertState]:
    """Every stored alert state by fingerprint."""
    with meta.engine.connect() as conn:
        rows = conn.execute(sa.select(alert_state)).mappings().all()
    out = {}
    for r in rows:
        data = dict(r)
        data["labels"] = json.loads(data["labels"])
        data["trace_ids"] = tuple(json.loads(data["trace_ids"] or "[]"))
        out[data["fingerprint"]] = AlertState(**data)
    return out


def save_states(meta: MetaStore, changed: Iterable[AlertState], gone: Iterable[str]) -> None:
    """Write changed states and delete forgotten ones, in one transaction."""
    changed, gone = list(changed), list(gone)
    if not changed and not gone:
        return
    with meta.transaction() as conn:
        fps = [s.fingerprint for s in changed] + gone
        conn.execute(alert_state.delete().where(alert_state.c.fingerprint.in_(fps)))
        if changed:
            conn.execute(alert_state.insert(), [_state_values(s) for s in changed])


def append_history(meta: MetaStore, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record alert events (firing, resolved, repeat) with why any was muted."""
    if rows:
        with meta.transaction() as conn:
            conn.execute(alert_history.insert(), [dict(r) for r in rows])


def history(
    meta: MetaStore, project: str, limit: int = 200, rule_id: str | None = None
) -> list[dict[str, Any]]:
    """Newest alert events of a project."""
    q = sa.select(alert_history).where(alert_history.c.project == project)
    if rule_id:
        q = q.where(alert_history.c.rule_id == rule_id)
    with meta.engine.connect() as conn:
        rows = conn.execute(q.order_by(alert_history.c.id.desc()).limit(limit)).mappings().all()
    return [{**dict(r), "labels": json.loads(r["labels"])} for r in rows]


# --- silences --------------------------------------------------------------------------------


def add_silence(meta: MetaStore, s: Silence, now: float) -> Silence:
    """Store a silence; give it an id when it has none."""
    s = s if s.id else dataclasses.replace(s, id=secrets.token_hex(8))
    with meta.transaction() as conn:
        conn.execute(
            silences.insert().values(
                id=s.id,
                project=s.project,
                matchers=json.dumps([m.model_dump() for m in s.matchers]),
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                comment=s.comment,
                created_by=s.created_by,
                created_at=now,
            )
        )
    return s


def load_silences(meta: MetaStore, project: str | None, since: float) -> list[Silence]:
    """Silences of a project (or all) that end after `since`."""
    q = sa.select(silences).where(silences.c.ends_at > since)
    if project is not None:
        q = q.where(silences.c.project == project)
    with meta.engine.connect() as conn:
        rows = conn.execute(q.order_by(silences.c.starts_at)).all()
    return [
        Silence(
            r.id,
            tuple(Matcher.model_validate(m) for m in json.loads(r.matchers)),
            r.starts_at,
            r.ends_at,
            r.comment,
            r.created_by,
            r.project,
        )
        for r in rows
    ]


def expire_silence(meta: MetaStore, project: str, silence_id: str, now: float) -> bool:
    """End a silence now; False when no such active silence exists."""
    with meta.transaction() as conn:
        done = conn.execute(
            silences.update()
            .where(
                silences.c.id == silence_id,
                silences.c.project == project,
                silences.c.ends_at > now,
            )
            .values(ends_at=now)
        )
    return bool(done.rowcount)


# --- outbox ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One notification waiting for (or done with) delivery to one channel."""

    id: int
    channel: str
    notification: Notification
    attempts: int
    next_attempt_at: float
    created_at: float


def enqueue(meta: MetaStore, items: Sequence[tuple[str, str, Notification]], now: float) -> None:
    """Add (project, channel, notification) entries to the outbox, due now."""
    if not items:
        return
    rows = [
        {
            "created_at": now,
            "project": project,
            "channel": channel,
            "rule_id": n.rule_id,
            "fingerprint": n.fingerprint,
            "notification": encode_notification(n),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for project, channel, n in items
    ]
    with meta.transaction() as conn:
        conn.execute(outbox.insert(), rows)


def pending_channels(meta: MetaStore) -> list[str]:
    """Channels that have undelivered entries."""
    q = sa.select(outbox.c.channel).where(outbox.c.state == "pending").distinct()
    with meta.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(q).all())


def pending(meta: MetaStore, limit: int, channel: str | None = None) -> list[OutboxEntry]:
    """Undelivered entries (of one channel, or all), oldest first."""
    q = sa.select(outbox).where(outbox.c.state == "pending")
    if channel is not None:
        q = q.where(outbox.c.channel == channel)
    q = q.order_by(outbox.c.id).limit(limit)
    with meta.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        OutboxEntry(
            r.id,
            r.channel,
            decode_notification(r.notification),
            r.attempts,
            r.next_attempt_at,
            r.created_at,
        )
        for r in rows
    ]


def claim(meta: MetaStore, entry: OutboxEntry, until: float) -> bool:
    """Take the next delivery attempt of `entry` (as it was read) until `until`; False when
    another replica took it first or it moved on since it was read. A claim left by a
    replica that died runs out at `until`, and the entry is tried again."""
    with meta.transaction() as conn:
        done = conn.execute(
            outbox.update()
            .where(
                outbox.c.id == entry.id,
                outbox.c.state == "pending",
                outbox.c.attempts == entry.attempts,
                outbox.c.next_attempt_at == entry.next_attempt_at,
            )
            .values(next_attempt_at=until)
        )
    return bool(done.rowcount)


def record_attempt(
    meta: MetaStore,
    entry: OutboxEntry,
    *,
    now: float,
    result: str,
    error: str | None,
    duration_ms: float,
    next_attempt_at: float | None,
) -> None:
    """Log one delivery attempt and move the entry on (delivered, retry later, or failed)."""
    state = {"ok": "delivered", "retry": "pending"}.get(result, result)
    values: dict[str, Any] = {"state": state, "attempts": entry.attempts + 1, "last_error": error}
    if result == "ok":
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with meta.engine.begin() as conn:
        conn.execute(outbox.update().where(outbox.c.id == entry.id).values(values))
        conn.execute(
            attempts.insert().values(
                outbox_id=entry.id,
                at=now,
                channel=entry.channel,
                result=result,
                error=error,
                duration_ms=duration_ms,
            )
        )


def depth(meta: MetaStore) -> int:
    """How many entries wait for delivery (as the transaction open in this context sees it)."""
    with meta.transaction() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.state == "pending")
        ).scalar_one()
    return int(n)


def drop_oldest(meta: MetaStore, keep: int) -> int:
    """Bound the outbox: mark the oldest pending entries past `keep` as dropped."""
    over = depth(meta) - keep
    if over <= 0:
        return 0
    oldest = sa.select(outbox.c.id).where(outbox.c.state == "pending").order_by(outbox.c.id)
    with meta.transaction() as conn:
        ids = [r[0] for r in conn.execute(oldest.limit(over)).all()]
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(state="dropped"))
    return len(ids)


def notification_log(meta: MetaStore, project: str, limit: int = 100) -> list[dict[str, Any]]:
    """Newest outbox entries of a project with their delivery attempts."""
    q = sa.select(outbox).where(outbox.c.project == project).order_by(outbox.c.id.desc())
    with meta.engine.connect() as conn:
        rows = conn.execute(q.limit(limit)).mappings().all()
        ids = [r["id"] for r in rows]
        tries = (
            conn.execute(
                sa.select(attempts).where(attempts.c.outbox_id.in_(ids)).order_by(attempts.c.id)
            )
            .mappings()
            .all()
        )
    by_entry: dict[int, list[dict[str, Any]]] = {}
    for t in tries:
        by_entry.setdefault(t["outbox_id"], []).append(
            {k: t[k] for k in ("at", "result", "error", "duration_ms")}
        )
    out = []
    for r in rows:
        item = {k: v for k, v in r.items() if k != "notification"}
        item["notification"] = json.loads(r["notification"])
        item["attempt_log"] = by_entry.get(r["id"], [])
        out.append(item)
    return out


def prune(meta: MetaStore, before: float) -> int:
    """Forget history, finished outbox entries and attempts older than `before`."""
    with meta.engine.begin() as conn:
        n = conn.execute(alert_history.delete().where(alert_history.c.at < before)).rowcount
        n += conn.execute(
            outbox.delete().where(outbox.c.state != "pending", outbox.c.created_at < before)
        ).rowcount
        n += conn.execute(attempts.delete().where(attempts.c.at < before)).rowcount
    return int(n)


# --- the evaluation lease (one replica evaluates and delivers) ------------------------------


def acquire_lease(meta: MetaStore, name: str, holder: str, now: float, ttl: float) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl; False if another holds it."""
    with meta.engine.begin() as conn:
        done = conn.execute(
            lease.update()
            .where(
                lease.c.name == name, sa.or_(lease.c.holder == holder, lease.c.expires_at <= now)
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        if done.rowcount:
            return True
        if conn.execute(sa.select(lease.c.name).where(lease.c.name == name)).first():
            return False
        try:
            with conn.begin_nested():
                conn.execute(lease.insert().values(name=name, holder=holder, expires_at=now + ttl))
        except sa.exc.IntegrityError:  # another replica inserted it first
            return False
    return True


def holds_lease(conn: sa.Connection, name: str, holder: str, now: float) -> bool:
    """Whether `holder` holds the lease `name` at `now`, asked in the caller's transaction.

    The lease row stays locked (PostgreSQL) until that transaction ends, so no replica can
    take the lease between this answer and the caller's commit: what a leader writes behind
    this check is written by the leader.
    """
    row = conn.execute(
        sa.select(lease.c.holder, lease.c.expires_at).where(lease.c.name == name).with_for_update()
    ).first()
    return row is not None and row.holder == holder and row.expires_at > now


def release_lease(meta: MetaStore, name: str, holder: str) -> None:
    """Give the lease up now (on a clean stop), so another replica takes over at once."""
    with meta.engine.begin() as conn:
        conn.execute(
            lease.update()
            .where(lease.c.name == name, lease.c.holder == holder)
            .values(expires_at=0.0)
        )
