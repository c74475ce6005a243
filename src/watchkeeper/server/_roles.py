"""Roles per project, and who holds them: what a credential may do, decided without HTTP.

Four roles, each a set of powers over one project:

- `ingest`: write telemetry (OTLP spans, SDK feedback and scores): what an app holds, so a
  leaked app key reads nothing;
- `viewer`: read the project's data, rules, alerts, SLOs; read-only, like Grafana's Viewer;
- `editor`: viewer and ingest, and change rules, silences, review decisions, datasets, SLOs;
- `admin`: editor, and the project's keys, members, channels, retention and deletes.

admin ⊇ editor ⊇ viewer, and editor and admin also ingest (an admin key can send spans, as in
Grafana or Langfuse). A viewer cannot: writing spans or scores changes what others read.

A `Principal` is whoever a credential names, with a role in each of its projects: a key has
one project; a person (local account or single sign-on, later) may have several. The
server's admin token is a principal of its own: it manages every project's keys and reads no
project's data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from watchkeeper.errors import Forbidden, ValidationError


class Role(enum.StrEnum):
    """A role in one project: ingest, viewer, editor or admin (see SECURITY.md)."""

    INGEST = "ingest"
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    def grants(self, needed: Role) -> bool:
        """True when this role includes `needed`."""
        return needed in _GRANTS[self]

    def holders(self) -> list[Role]:
        """The roles that include this one, weakest first (for messages)."""
        return [r for r in Role if r.grants(self)]


_GRANTS: dict[Role, frozenset[Role]] = {
    Role.INGEST: frozenset({Role.INGEST}),
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.EDITOR: frozenset({Role.INGEST, Role.VIEWER, Role.EDITOR}),
    Role.ADMIN: frozenset(Role),
}

#: The role a key stored before roles existed is given: what such a key could do (write
#: telemetry, read, change rules and silences), so an upgrade breaks no app or dashboard
#: and grants nothing new (testing a channel, now admin's, is the one thing it loses).
MIGRATED_KEY_ROLE = Role.EDITOR
#: The role of a key created without one: the narrowest, what an app needs.
DEFAULT_KEY_ROLE = Role.INGEST


def parse_role(value: str) -> Role:
    """The role named `value`; ValidationError lists the valid names."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValidationError(f"role {value!r} is not one of {names}") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever a credential names: how messages call it, and its role in each project."""

    name: str  # "key 1a2b3c4d5e6f7a8b", "the admin token": never a secret
    roles: Mapping[str, Role] = field(default_factory=dict)
    #: The admin token: manages every project's keys, reads no project's data. A server
    #: administrator (a person) too, and also every project's members.
    keys_admin: bool = False
    #: A person signed in (a session), not a key: messages advise asking for a role.
    person: bool = False

    def role_in(self, project: str) -> Role | None:
        """This principal's role in `project`, None without one."""
        return self.roles.get(project)

    def acting_project(self, requested: str | None) -> str | None:
        """The project a request acts for: a key's own; else the requested one it belongs to."""
        if len(self.roles) == 1:
            return next(iter(self.roles))
        return requested if requested in self.roles else None

    def may_manage_keys(self, project: str) -> bool:
        """True for the admin token, and for an admin of `project`."""
        role = self.role_in(project)
        return self.keys_admin or (role is not None and role.grants(Role.ADMIN))


def forbidden(principal: Principal, needed: Role, project: str | None) -> Forbidden:
    """The 403 for `principal` lacking `needed`: names the role needed, never a secret."""
    holders = ", ".join(r.value for r in needed.holders())
    where = f" on project {project}" if project else ""
    held = principal.role_in(project) if project else None
    if principal.keys_admin and held is None:
        has = f"{principal.name} manages keys and people, and reads no project's data"
    elif project is None and len(principal.roles) > 1:
        projects = ", ".join(sorted(principal.roles)[:10])
        has = (
            f"{principal.name} has roles in several projects ({projects}): name one with "
            "the X-Watchkeeper-Project header or ?project="
        )
    elif held is None:
        has = f"{principal.name} has no role{where}"
    else:
        has = f"{principal.name} has the {held.value} role"
    advice = (
        f"ask an admin of the project for the {needed.value} role"
        if principal.person
        else f"send a key with that role (watchkeeper keys create --role {needed.value})"
    )
    return Forbidden(
        f"this needs the {needed.value} role{where} (held by: {holders}); {has}: {advice}"
    )


def authorize(principal: Principal, needed: Role, requested: str | None) -> str:
    """The project `principal` acts for with `needed`; Forbidden when it lacks that role."""
    project = principal.acting_project(requested)
    role = principal.role_in(project) if project else None
    if project is None or role is None or not role.grants(needed):
        raise forbidden(principal, needed, project or requested)
    return project
