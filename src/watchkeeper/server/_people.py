"""People: local accounts and single sign-on accounts, and their roles in projects.

A person has a unique username and either a password (argon2id, `_passwords`) or a link to
an identity provider's subject (`oidc_subject`), or both. A person may be a server
administrator (`is_admin`, what `watchkeeper users create --admin` makes): like the admin
token, one manages every project's keys and people, and reads a project's data only as a
member of it. A membership gives a person one role in one project (`_roles.Role`).

Every change is made in one transaction with the call to `record` (the audit seam, see
`PeopleEvent`): a change whose record fails is not made.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from watchkeeper.errors import NotFound, ValidationError
from watchkeeper.server._passwords import (
    check_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from watchkeeper.server._roles import Principal, Role
from watchkeeper.store.meta import METADATA, MetaStore

log = logging.getLogger("watchkeeper.server.people")

people = sa.Table(
    "people",
    METADATA,
    sa.Column("person_id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("password_hash", sa.String(200), nullable=True),  # None: SSO only
    sa.Column("oidc_subject", sa.String(600), nullable=True, unique=True),  # "issuer#sub"
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("disabled_at", sa.Float, nullable=True),
)

memberships = sa.Table(
    "memberships",
    METADATA,
    sa.Column("person_id", sa.String(32), sa.ForeignKey("people.person_id"), primary_key=True),
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
#: A project name, as /openapi.json declares it.
PROJECT_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"
_PROJECT = re.compile(PROJECT_PATTERN)


@dataclass(frozen=True, slots=True)
class Person:
    """A stored account, without its password hash."""

    person_id: str
    username: str
    display_name: str
    is_admin: bool
    sso: bool  # linked to an identity provider
    has_password: bool
    created_at: float
    disabled_at: float | None
    roles: Mapping[str, Role] = field(default_factory=dict)

    def principal(self) -> Principal:
        """Who this person is to the access checks: a role in each of their projects."""
        return Principal(f"person {self.username}", dict(self.roles), self.is_admin, person=True)


@dataclass(frozen=True, slots=True)
class PeopleEvent:
    """What changed, for the audit log: `action` on `target`, `before` → `after`.

    Actions: login, login_failed, logout, person_created, person_changed, member_set,
    member_removed. `actor` is a principal's name ("person alice", "key 1a2b…", "the admin
    token", "the command line"), never a secret; `where` the request as `describe` names it.
    """

    action: str
    actor: str
    target: str
    where: str = ""
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    project: str | None = None  # a membership's project


#: The audit seam: called inside the change's transaction (its connection is passed), so a
#: record that fails undoes the change. The audit log replaces `log_event` with its writer.
Recorder = Callable[[sa.Connection, PeopleEvent], None]


def log_event(_conn: sa.Connection, event: PeopleEvent) -> None:
    """The default recorder: one log line per event."""
    log.info(
        "%s by %s on %s%s", event.action, event.actor, event.target,
        f" ({event.where})" if event.where else "",
    )  # fmt: skip


def valid_username(username: str) -> str:
    """The username, lowercased; ValidationError when it is not 1-64 allowed characters."""
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise ValidationError(
            f"username {username[:64]!r} is invalid: use 1-64 lowercase letters, digits, "
            "'.', '_', '@', '+' or '-', starting with a letter or digit"
        )
    return name


def valid_project(project: str) -> str:
    """The project name; ValidationError when it is not 1-200 letters, digits, '-_.'."""
    if not _PROJECT.fullmatch(project):
        raise ValidationError(
            f"project name {project[:200]!r} is invalid: use 1-200 letters, digits, '-', '_' or '.'"
        )
    return project


class People:
    """Creates, changes and finds people and their memberships, in the metadata DB."""

    def __init__(self, meta: MetaStore, record: Recorder = log_event) -> None:
        self._meta = meta
        self.record = record

    def transaction(self) -> AbstractContextManager[sa.Connection]:
        """A transaction on the metadata DB (for a record made outside a change)."""
        return self._meta.engine.begin()

    # -- reading ---------------------------------------------------------------------------
    def any_active(self) -> bool:
        """True when at least one account is not disabled (auth is then required)."""
        with self._meta.engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.select(sa.func.count()).where(people.c.disabled_at.is_(None))
                ).scalar_one()
            )

    def everyone(self) -> list[Person]:
        """Every person, by username."""
        with self._meta.engine.connect() as conn:
            rows = conn.execute(sa.select(people).order_by(people.c.username)).all()
            roles = self._roles(conn, None)
        return [_person(row, roles.get(row.person_id, {})) for row in rows]

    def get(self, username: str) -> Person | None:
        """One person by username; None when there is none."""
        return self._one(people.c.username == username.strip().lower())

    def by_id(self, person_id: str) -> Person | None:
        """One person by id; None when there is none."""
        return self._one(people.c.person_id == person_id)

    def by_subject(self, subject: str) -> Person | None:
        """The person linked to an identity provider's subject ("issuer#sub")."""
        return self._one(people.c.oidc_subject == subject)

    def _one(self, where: sa.ColumnElement[bool]) -> Person | None:
        with self._meta.engine.connect() as conn:
            row = conn.execute(sa.select(people).where(where)).one_or_none()
            if row is None:
                return None
            roles = self._roles(conn, row.person_id)
        return _person(row, roles.get(row.person_id, {}))

    def _roles(self, conn: sa.Connection, person_id: str | None) -> dict[str, dict[str, Role]]:
        query = sa.select(memberships)
        if person_id is not None:
            query = query.where(memberships.c.person_id == person_id)
        out: dict[str, dict[str, Role]] = {}
        for row in conn.execute(query):
            out.setdefault(row.person_id, {})[row.project] = Role(row.role)
        return out

    def members(self, project: str | None = None) -> list[tuple[Person, str, Role]]:
        """(person, project, role) for every membership, of `project` or of all."""
        query = sa.select(memberships.c.person_id, memberships.c.project, memberships.c.role)
        if project is not None:
            query = query.where(memberships.c.project == project)
        with self._meta.engine.connect() as conn:
            rows = conn.execute(query.order_by(memberships.c.project)).all()
        everyone = {p.person_id: p for p in self.everyone()}
        return [(everyone[r.person_id], r.project, Role(r.role)) for r in rows]

    def authenticate(self, username: str, password: str) -> Person | None:
        """The active person whose password this is; None for any other case, in about the
        same time (an unknown name is checked against a dummy hash)."""
        try:
            name = valid_username(username)
        except ValidationError:
            name = ""
        with self._meta.engine.connect() as conn:
            row = conn.execute(sa.select(people).where(people.c.username == name)).one_or_none()
        stored = row.password_hash if row is not None else None
        if not verify_password(stored, password) or row is None or row.disabled_at is not None:
            return None
        if stored is not None and needs_rehash(stored):
            self._write(people.update().where(people.c.person_id == row.person_id),
                        password_hash=hash_password(password))  # fmt: skip
        return self.by_id(row.person_id)

    # -- changing --------------------------------------------------------------------------
    def create(
        self,
        username: str,
        password: str | None,
        *,
        admin: bool = False,
        display_name: str = "",
        subject: str | None = None,
        actor: str,
        where: str = "",
    ) -> Person:
        """A new account; ValidationError when the name is taken or the password is weak."""
        name = valid_username(username)
        if password is None and subject is None:
            raise ValidationError("a local account needs a password")
        hashed = hash_password(check_password(password, name)) if password is not None else None
        person_id = secrets.token_hex(8)
        values = {"person_id": person_id, "username": name, "display_name": display_name[:200],
                  "password_hash": hashed, "oidc_subject": subject, "is_admin": admin,
                  "created_at": time.time()}  # fmt: skip
        after = {"username": name, "admin": admin, "sso": subject is not None}
        event = PeopleEvent("person_created", actor, f"person {name}", where, None, after)
        try:
            with self._meta.engine.begin() as conn:
                conn.execute(people.insert().values(**values))
                self.record(conn, event)
        except sa.exc.IntegrityError:
            raise ValidationError(f"username {name!r} is taken: pick another") from None
        found = self.by_id(person_id)
        assert found is not None
        return found

    def change(
        self,
        username: str,
        *,
        password: str | None = None,
        disabled: bool | None = None,
        admin: bool | None = None,
        actor: str,
        where: str = "",
        also: Callable[[sa.Connection, str], None] | None = None,
    ) -> Person:
        """Set a person's password, disabled state or admin flag; `also(conn, person_id)` runs
        in the same transaction (the sessions end there when a password or state changes)."""
        person = self._known(username)
        values: dict[str, Any] = {}
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if password is not None:
            values["password_hash"] = hash_password(check_password(password, person.username))
            before["password"], after["password"] = "***", "*** (changed)"
        if disabled is not None and disabled != (person.disabled_at is not None):
            values["disabled_at"] = time.time() if disabled else None
            before["disabled"], after["disabled"] = not disabled, disabled
        if admin is not None and admin != person.is_admin:
            values["is_admin"] = admin
            before["admin"], after["admin"] = person.is_admin, admin
        if not values:
            return person
        target = f"person {person.username}"
        with self._meta.engine.begin() as conn:
            conn.execute(
                people.update().where(people.c.person_id == person.person_id).values(**values)
            )
            if also is not None:
                also(conn, person.person_id)
            self.record(conn, PeopleEvent("person_changed", actor, target, where, before, after))
        return self._known(person.username)

    def set_role(
        self, username: str, project: str, role: Role | None, *, actor: str, where: str = ""
    ) -> Role | None:
        """Give `username` `role` in `project` (None: remove them); the role held before."""
        person = self._known(username)
        project = valid_project(project)
        before = person.roles.get(project)
        if before == role:
            return before
        key = (memberships.c.person_id == person.person_id) & (memberships.c.project == project)
        target = f"person {person.username} in project {project}"
        action = "member_removed" if role is None else "member_set"
        event = PeopleEvent(action, actor, target, where,
                            {"role": before.value if before else None},
                            {"role": role.value if role else None}, project)  # fmt: skip
        with self._meta.engine.begin() as conn:
            conn.execute(memberships.delete().where(key))
            if role is not None:
                conn.execute(memberships.insert().values(
                    person_id=person.person_id, project=project, role=role.value,
                    created_at=time.time()))  # fmt: skip
            self.record(conn, event)
        return before

    def _known(self, username: str) -> Person:
        person = self.get(username)
        if person is None:
            raise NotFound(f"no person named {username[:64]!r}; see GET /api/v1/people")
        return person

    def _write(self, statement: sa.Update, **values: Any) -> None:
        with self._meta.engine.begin() as conn:
            conn.execute(statement.values(**values))


def _person(row: Any, roles: Mapping[str, Role]) -> Person:
    return Person(
        person_id=row.person_id,
        username=row.username,
        display_name=row.display_name,
        is_admin=bool(row.is_admin),
        sso=row.oidc_subject is not None,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        roles=dict(roles),
    )
