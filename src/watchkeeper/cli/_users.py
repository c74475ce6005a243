"""`watchkeeper users`: people's accounts from the shell (the first admin, a lost password).

Passwords are read from the terminal (asked twice) or, for scripts, one line of standard
input with `--password-stdin`; never from the command line, where `ps` would show them.
Changes are made on the metadata DB, so a running server sees them on its next request:
a new password or a disabled account ends that person's sessions at once.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from watchkeeper.cli._commands import Command, _guarded, _load, _server_options
from watchkeeper.server import Role

ACTOR = "the command line"


def _options(p: argparse.ArgumentParser) -> None:
    _server_options(p)
    p.add_argument(
        "action", choices=["create", "list", "disable", "enable", "set-password", "grant", "revoke"]
    )
    p.add_argument("username", nargs="?", help="the account (all but list)")
    p.add_argument("--admin", action="store_true", help="create: a server administrator")
    p.add_argument("--name", default="", help="create: the person's display name")
    p.add_argument("--project", help="grant, revoke: the project")
    p.add_argument("--role", choices=[r.value for r in Role], help="grant: the role")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("watchkeeper: the two passwords differ; nothing changed")
    return first


def _run(args: argparse.Namespace) -> int:
    from watchkeeper.server import (
        AuditLog,
        KeyRing,
        SignIn,
        cli_actor,
        local_origin,
        people_recorder,
    )
    from watchkeeper.store.meta import MetaStore

    config = _load(args)
    meta = MetaStore(config.meta_url)
    meta.create_all()
    signin = SignIn(config, meta, KeyRing(meta))
    people = signin.people
    people.record = people_recorder(AuditLog(meta), cli_actor(), local_origin("watchkeeper users"))
    if args.action == "list":
        for p in people.everyone():
            state = "disabled" if p.disabled_at else "active"
            roles = ",".join(f"{proj}:{role}" for proj, role in sorted(p.roles.items()))
            kind = "admin" if p.is_admin else "person"
            print(f"{p.username}\t{kind}\t{state}\t{'sso' if p.sso else 'local'}\t{roles or '-'}")
        return 0
    if not args.username:
        print(f"users {args.action} needs a USERNAME", file=sys.stderr)
        return 2
    name = args.username
    if args.action == "create":
        person = people.create(name, _password(args), admin=args.admin, display_name=args.name,
                               actor=ACTOR)  # fmt: skip
        kind = "server administrator" if person.is_admin else "account"
        print(f"created {kind} {person.username}")
    elif args.action in ("disable", "enable"):
        signin.change(name, disabled=args.action == "disable", actor=ACTOR)
        print(
            f"{args.action}d {name}" + (" (its sessions ended)" if args.action == "disable" else "")
        )
    elif args.action == "set-password":
        signin.change(name, password=_password(args), actor=ACTOR)
        print(f"set the password of {name} (its sessions ended)")
    elif args.action == "grant":
        if not args.project or not args.role:
            print("users grant needs --project NAME --role ROLE", file=sys.stderr)
            return 2
        people.set_role(name, args.project, Role(args.role), actor=ACTOR)
        print(f"{name} has the {args.role} role in project {args.project}")
    else:
        if not args.project:
            print("users revoke needs --project NAME", file=sys.stderr)
            return 2
        if people.set_role(name, args.project, None, actor=ACTOR) is None:
            print(f"{name} is not a member of project {args.project}", file=sys.stderr)
            return 1
        print(f"{name} is no longer a member of project {args.project}")
    return 0


USERS = Command(
    "users", "create, list, disable people's accounts, set passwords, grant roles", _options,
    _guarded(_run),
)  # fmt: skip
