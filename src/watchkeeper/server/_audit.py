"""The audit log: every change, who made it, when, from where, and its target before → after.

An entry is a row of `audit_log` in the meta DB, written in the transaction of the change it
records (`audited(request, ...)` in a route, `AuditLog.change` elsewhere): a change that
fails writes no entry, and an entry that cannot be written fails the change. Entries are
numbered (`seq`) and chained: each carries the SHA-256 of its own content (canonical JSON)
and the hash of the entry before it, and `audit_head` holds the last number and hash, so an
edited, deleted or truncated entry breaks `check_chain`, which names the first broken one.
Secrets never reach an entry: `masked` replaces them before anything is hashed or stored.

Retention (`audit.retention_days`) deletes the oldest entries and appends an `audit.pruned`
checkpoint naming the last pruned number and the hash the kept chain continues from, so the
chain still verifies after pruning, and still fails when entries vanish without a checkpoint.

The chain exposes tampering by whoever cannot also rewrite every later entry and the head.
Someone who can write the whole database can rewrite it all: that is why `verify` prints the
head hash, to keep elsewhere (or export the log) and compare later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from pydantic import BaseModel, SecretStr

from watchkeeper.errors import StoreError
from watchkeeper.server._audit_actor import SYSTEM, Actor, Origin, local_origin, who
from watchkeeper.store.meta import METADATA, MetaStore

#: The previous hash of the first entry ever written.
GENESIS = "0" * 64
MASK = "***"
PRUNED = "audit.pruned"
SETTINGS = "settings.applied"
_PAGE = 500
_DAY_S = 86_400.0
#: Keys whose values are secrets wherever they appear in a before or after.
_SECRET_KEY = re.compile(
    r"(^|_)(password|passwd|secret|token|api_key|routing_key|authorization|webhook_url|"
    r"credentials?|private_key)$|^(url|headers)$",
    re.IGNORECASE,
)

#: The password of a URL's user info (a database URL: `postgresql://user:PASSWORD@host`).
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)", re.IGNORECASE)

audit_log = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Float, nullable=False, index=True),  # unix seconds
    sa.Column("actor_kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("address", sa.String(100), nullable=False),
    sa.Column("user_agent", sa.String(300), nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("project", sa.String(200), nullable=True, index=True),  # None: the server's
    sa.Column("before", sa.Text, nullable=True),  # canonical JSON, secrets masked
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

#: One row (id 1): the last entry's number and hash. Appends update it first, which also
#: serialises them (a row lock on PostgreSQL, the write lock on SQLite).
audit_head = sa.Table(
    "audit_head",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


def _start_chain(table: sa.Table, connection: sa.Connection, **_kw: Any) -> None:
    """The head of an empty chain, written when the table is created (never again)."""
    connection.execute(table.insert().values(id=1, seq=0, hash=GENESIS))


sa.event.listen(audit_head, "after_create", _start_chain)

#: What an entry's hash covers, in canonical JSON (sorted keys, no spaces, UTF-8).
HASHED = (
    "seq",
    "at",
    "actor_kind",
    "actor",
    "address",
    "user_agent",
    "action",
    "target",
    "project",
    "before",
    "after",
    "prev_hash",
)


def audited(
    request: Request, action: str, target: str, project: str | None
) -> contextlib.AbstractContextManager[Change]:
    """The one call a route makes to change something on the record:

        with audited(request, "member.add", f"user {name}", project) as change:
            ...  # write through services.meta.transaction() (or a helper that does)
            change.before, change.after = old, new

    The entry names the request's principal and client, and commits with the change.
    """
    actor, origin = who(request)
    log: AuditLog = request.app.state.services.audit
    return log.change(actor, origin, action, target, project)


def masked(value: Any) -> Any:
    """`value` as JSON data, with every secret (SecretStr, a secret-named key, a URL's
    password) replaced."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return masked(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {
            str(k): MASK if _SECRET_KEY.search(str(k)) and v not in (None, "", {}) else masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1{MASK}\3", value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return str(value)


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_hash(row: Mapping[str, Any]) -> str:
    """The SHA-256 of an entry's hashed fields, as stored (before/after as their JSON text)."""
    return hashlib.sha256(canonical({k: row[k] for k in HASHED}).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry as stored."""

    seq: int
    at: float
    actor_kind: str
    actor: str
    address: str
    user_agent: str
    action: str
    target: str
    project: str | None
    before: str | None
    after: str | None
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        """The entry for the API and the export: before and after as data."""
        out = {k: getattr(self, k) for k in ENTRY_FIELDS}
        out["before"] = None if self.before is None else json.loads(self.before)
        out["after"] = None if self.after is None else json.loads(self.after)
        return out


#: The columns of an entry, in order.
ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(Entry))


@dataclass
class Change:
    """What an audited block fills in: its target before and after (None: absent), and the
    target's name when it is known only once the change is made (a new key's id)."""

    before: Any = None
    after: Any = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    """Which entries to read; `projects` None sees every project and the server's own."""

    projects: frozenset[str] | None = None
    project: str | None = None
    actor: str | None = None  # an actor's name or kind
    action: str | None = None  # exact, or a prefix ending in '*' ("rule.*")
    target: str | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # exclusive

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        """The WHERE clauses of this filter."""
        c = audit_log.c
        out: list[sa.ColumnElement[bool]] = []
        if self.projects is not None:
            out.append(c.project.in_(sorted(self.projects)))
        if self.project is not None:
            out.append(c.project == self.project)
        if self.actor:
            out.append(sa.or_(c.actor == self.actor, c.actor_kind == self.actor))
        if self.action and self.action.endswith("*"):
            out.append(c.action.startswith(self.action[:-1], autoescape=True))
        elif self.action:
            out.append(c.action == self.action)
        if self.target:
            out.append(c.target == self.target)
        if self.since is not None:
            out.append(c.at >= self.since)
        if self.until is not None:
            out.append(c.at < self.until)
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `check_chain` found: ok, or the first broken entry and why."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""


def _entry(row: Any) -> Entry:
    return Entry(**{k: row[k] for k in ENTRY_FIELDS})


def check_chain(
    rows: Iterable[Mapping[str, Any]],
    head: tuple[int, str] | None,
    checkpoints: Mapping[int, str],
) -> Verdict:
    """Walk entries in `seq` order against the head; `checkpoints` maps the last pruned
    number to the hash the chain continues from (from the `audit.pruned` entries)."""
    head_seq, head_hash = head if head is not None else (-1, "")
    n = 0
    prev: Mapping[str, Any] | None = None

    def broken(seq: int | None, problem: str) -> Verdict:
        return Verdict(False, n, head_seq, head_hash, seq, problem)

    for row in rows:
        n += 1
        seq = int(row["seq"])
        if prev is None:
            if seq == 1 and row["prev_hash"] != GENESIS:
                return broken(seq, "entry 1 does not start the chain (its previous hash is set)")
            if seq != 1 and checkpoints.get(seq - 1) != row["prev_hash"]:
                return broken(
                    seq,
                    f"entries before {seq} are gone and no audit.pruned checkpoint records "
                    "pruning them",
                )
        elif seq != int(prev["seq"]) + 1:
            gone = int(prev["seq"]) + 1
            return broken(gone, f"entry {gone} is missing (the log jumps from {gone - 1} to {seq})")
        elif row["prev_hash"] != prev["hash"]:
            return broken(
                seq, f"entry {seq} does not follow entry {seq - 1}: previous hash differs"
            )
        if entry_hash(row) != row["hash"]:
            return broken(seq, f"entry {seq} was altered: its content no longer matches its hash")
        prev = row
    if head is None:
        return broken(None, "the audit head row is missing")
    last_seq, last_hash = (0, GENESIS) if prev is None else (int(prev["seq"]), prev["hash"])
    if last_seq < head_seq:
        return broken(last_seq + 1, f"entries {last_seq + 1} to {head_seq} are missing")
    if (last_seq, last_hash) != (head_seq, head_hash):
        return broken(last_seq, f"entry {last_seq} is not the head the log recorded")
    return Verdict(True, n, head_seq, head_hash)


class AuditLog:
    """Appends, reads, prunes and verifies the audit log in a meta DB."""

    def __init__(self, meta: MetaStore, clock: Callable[[], float] = time.time) -> None:
        self._meta = meta
        self._clock = clock

    @contextlib.contextmanager
    def change(
        self, actor: Actor, origin: Origin, action: str, target: str, project: str | None
    ) -> Iterator[Change]:
        """Make a change inside this block (through `MetaStore.transaction`) and fill in the
        yielded `Change`; the entry is written in the same transaction when the block ends.
        An exception in the block rolls the change back and writes nothing."""
        with self._meta.transaction() as conn:
            change = Change()
            yield change
            self.append(conn, actor, origin, action, change.target or target, project, change)

    def record(
        self,
        actor: Actor,
        origin: Origin,
        action: str,
        target: str,
        project: str | None,
        change: Change | None = None,
    ) -> Entry:
        """Record one entry now (in the transaction open in this context, if any): for an
        action that changes nothing in the meta DB, such as a channel test."""
        with self._meta.transaction() as conn:
            return self.append(conn, actor, origin, action, target, project, change or Change())

    def append(
        self,
        conn: sa.Connection,
        actor: Actor,
        origin: Origin,
        action: str,
        target: str,
        project: str | None,
        change: Change,
    ) -> Entry:
        """Write one entry on `conn` (a transaction the caller commits); StoreError when the
        chain's head is gone, which fails the change with it."""
        head = audit_head.c
        bumped = conn.execute(audit_head.update().where(head.id == 1).values(seq=head.seq + 1))
        if bumped.rowcount != 1:
            raise StoreError(
                "the audit log's head row is missing, so no change can be recorded; "
                "run 'watchkeeper audit verify' and restore the meta DB from a backup"
            )
        seq, prev = conn.execute(sa.select(head.seq, head.hash).where(head.id == 1)).one()
        row: dict[str, Any] = {
            "seq": int(seq),
            "at": float(self._clock()),
            "actor_kind": actor.kind[:32],
            "actor": actor.name[:200],
            "address": origin.address[:100],
            "user_agent": origin.user_agent[:300],
            "action": action[:64],
            "target": target[:300],
            "project": project,
            "prev_hash": prev,
            "before": None if change.before is None else canonical(masked(change.before)),
            "after": None if change.after is None else canonical(masked(change.after)),
        }
        row["hash"] = entry_hash(row)
        conn.execute(audit_log.insert().values(row))
        conn.execute(audit_head.update().where(head.id == 1).values(hash=row["hash"]))
        return _entry(row)

    def page(self, where: Filter, limit: int, before_seq: int | None = None) -> list[Entry]:
        """Up to `limit` entries, newest first, older than `before_seq` when given."""
        clauses = where.clauses()
        if before_seq is not None:
            clauses.append(audit_log.c.seq < before_seq)
        q = sa.select(audit_log).where(*clauses).order_by(audit_log.c.seq.desc()).limit(limit)
        with self._meta.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(q).mappings()]

    def entries(self, where: Filter | None = None) -> Iterator[Entry]:
        """Every entry the filter keeps, oldest first, read a page at a time."""
        clauses = (where or Filter()).clauses()
        after = 0
        while True:
            q = (
                sa.select(audit_log)
                .where(*clauses, audit_log.c.seq > after)
                .order_by(audit_log.c.seq)
                .limit(_PAGE)
            )
            with self._meta.engine.connect() as conn:
                rows = [_entry(r) for r in conn.execute(q).mappings()]
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1].seq

    def verify(self) -> Verdict:
        """Check the whole chain against its head; the first broken entry when it fails."""
        with self._meta.engine.connect() as conn:
            head = conn.execute(
                sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).one_or_none()
            marks = conn.execute(
                sa.select(audit_log.c.after).where(audit_log.c.action == PRUNED)
            ).scalars()
            checkpoints: dict[int, str] = {}
            for text in marks:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    mark = json.loads(text)
                    checkpoints[int(mark["through_seq"])] = str(mark["continues_from"])
        rows = ({k: getattr(e, k) for k in (*HASHED, "hash")} for e in self.entries())
        return check_chain(
            rows, None if head is None else (int(head[0]), str(head[1])), checkpoints
        )

    def still_holds(self, seq: int, digest: str) -> str | None:
        """None when entry `seq` still has hash `digest`, a head kept from an earlier
        `verify` (or was pruned under a checkpoint); else why not. This catches a rewrite of
        the whole chain, which `verify` alone cannot."""
        c = audit_log.c
        with self._meta.engine.connect() as conn:
            stored = conn.execute(sa.select(c.hash).where(c.seq == seq)).scalar()
            marks = conn.execute(sa.select(c.after).where(c.action == PRUNED)).scalars().all()
        if stored == digest:
            return None
        if stored is not None:
            return f"entry {seq} no longer has the hash kept for it: the log was rewritten"
        pruned = [json.loads(m).get("through_seq", 0) for m in marks if m]
        if any(isinstance(p, int) and p >= seq for p in pruned):
            return None
        return f"entry {seq}, the head kept earlier, is gone: the log was cut back"

    def prune(self, retention_days: int) -> int:
        """Delete entries older than the retention and append the checkpoint that lets the
        rest verify; how many were deleted."""
        cutoff = self._clock() - retention_days * _DAY_S
        c = audit_log.c
        with self._meta.transaction() as conn:
            head_seq, head_hash = conn.execute(
                sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).one()
            kept = conn.execute(sa.select(sa.func.min(c.seq)).where(c.at >= cutoff)).scalar()
            first = int(kept) if kept is not None else int(head_seq) + 1
            gone = conn.execute(audit_log.delete().where(c.seq < first)).rowcount
            if not gone:
                return 0
            follows = conn.execute(sa.select(c.prev_hash).where(c.seq == first)).scalar()
            mark = {
                "through_seq": first - 1,
                "continues_from": follows or head_hash,
                "entries": gone,
                "retention_days": retention_days,
                "cutoff": cutoff,
            }
            origin = local_origin("watchkeeper audit retention")
            self.append(conn, SYSTEM, origin, PRUNED, "audit log", None, Change(after=mark))
        return int(gone)

    def record_settings(self, snapshot: Mapping[str, Any], source: str, origin: Origin) -> bool:
        """Record the server's settings when they differ from the last recorded (a config
        file or environment changed between starts); True when an entry was written."""
        after = masked(snapshot)
        c = audit_log.c
        with self._meta.transaction() as conn:
            last = conn.execute(
                sa.select(c.after).where(c.action == SETTINGS).order_by(c.seq.desc()).limit(1)
            ).scalar()
            before = None if last is None else json.loads(last)
            if before == json.loads(canonical(after)):
                return False
            change = Change(before=before, after=after)
            self.append(
                conn, Actor("config", source), origin, SETTINGS, "server settings", None, change
            )
        return True
