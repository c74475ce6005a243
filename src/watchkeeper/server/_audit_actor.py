"""Who made a change on the record, and from where: the actor (a key, the admin token, a
person, the CLI's user, the configuration, the server itself) and the origin (a request's
client, or the local process), as the audit log (`_audit`) names them."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

from fastapi import Request

from watchkeeper.server._roles import Principal


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a kind (key, admin_token, user, anonymous, cli, config, system)
    and a name that is never a secret."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a change came from: the client's address and user agent, or the local process."""

    address: str
    user_agent: str


SYSTEM = Actor("system", "watchkeeper")
ANONYMOUS = Actor("anonymous", "a request without a credential (auth off)")


def local_origin(program: str) -> Origin:
    """The origin of a change made on the server's machine: the CLI, the server itself."""
    return Origin("local", f"{program} (pid {os.getpid()} on {socket.gethostname()})"[:300])


def cli_actor() -> Actor:
    """Whoever runs the CLI: the operating system user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return Actor("cli", f"{user}@{socket.gethostname()}"[:200])


def actor_of(principal: Principal | None) -> Actor:
    """How the audit log names a request's principal (None: no credential, auth off)."""
    if principal is None:
        return ANONYMOUS
    kind = getattr(principal, "kind", None)  # people's principals say what they are
    if not isinstance(kind, str):
        kind = "admin_token" if principal.keys_admin else principal.name.partition(" ")[0]
    return Actor(kind, principal.name)


def origin_of(request: Request) -> Origin:
    """A request's client address and user agent (cut to what the columns hold)."""
    address = request.client.host if request.client else "unknown"
    return Origin(address[:100], request.headers.get("user-agent", "")[:300])


def who(request: Request) -> tuple[Actor, Origin]:
    """The actor and origin of a request, from the principal its access check found."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return actor_of(principal), origin_of(request)
