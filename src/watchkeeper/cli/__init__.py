"""The `watchkeeper` command: serve, keys, users, demo, report, export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from watchkeeper.cli._commands import COMMANDS as _BASE
from watchkeeper.cli._users import USERS

COMMANDS = (*_BASE, USERS)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchkeeper", description="Observability for AI services."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `watchkeeper` command; return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # report and export own their options: hand them the rest of the line untouched.
    for command in COMMANDS:
        if argv and argv[0] == command.name and command.passthrough is not None:
            return command.passthrough(argv[1:])
    args = _parser().parse_args(argv)
    handler = next(c for c in COMMANDS if c.name == args.command).run
    assert handler is not None
    return handler(args)
