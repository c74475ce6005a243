"""People on the audit log: what `People.record` (the seam every account, membership,
sign-in and sign-out change goes through, inside its transaction) writes there."""

from __future__ import annotations

import sqlalchemy as sa

from watchkeeper.server._audit import AuditLog, Change
from watchkeeper.server._audit_actor import Actor, Origin
from watchkeeper.server._people import PeopleEvent, Recorder

#: Our event names as the audit log spells actions (`noun.verb`).
ACTIONS = {
    "person_created": "person.create",
    "person_changed": "person.change",
    "member_set": "member.set",
    "member_removed": "member.remove",
    "login": "session.login",
    "login_failed": "session.login_failed",
    "logout": "session.logout",
}


def _kind(actor: str) -> str:
    """The audit log's kind of an actor named as principals are ("person alice", "key 1a2b",
    "the admin token"), or as the people code names the others."""
    if actor == "the admin token":
        return "admin_token"
    first = actor.partition(" ")[0]
    if first in ("person", "key"):
        return first
    if first == "username" or actor.startswith("a request without a credential"):
        return "anonymous"  # a failed sign-in, or a change while auth is off
    return "system"  # single sign-on making an account or setting its roles


def _address(where: str) -> str:
    """The client address of a request as `describe` names it ("GET /x from 10.0.0.1")."""
    return where.rpartition(" from ")[2] if " from " in where else "local"


def people_recorder(
    log: AuditLog, actor: Actor | None = None, origin: Origin | None = None
) -> Recorder:
    """A `People.record` that appends each event to `log` on the change's own connection;
    `actor` and `origin` name the command line's changes."""

    def record(conn: sa.Connection, event: PeopleEvent) -> None:
        who = actor or Actor(_kind(event.actor), event.actor)
        where = origin or Origin(_address(event.where), "")
        action = ACTIONS.get(event.action, event.action)
        change = Change(event.before, event.after)
        log.append(conn, who, where, action, event.target, event.project, change)

    return record
