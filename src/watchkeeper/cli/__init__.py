"""The `watchkeeper` command: serve, keys, users, logs, demo, report, export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from watchkeeper.cli._commands import COMMANDS as _BASE
from watchkeeper.cli._demo import DEMO
from watchkeeper.cli._logs import LOGS
from watchkeeper.cli._users import USERS

COMMANDS = (*_BASE, DEMO, USERS, LOGS)

__all__ = ["main"]

#: Top-level modules of the optional extras (pyproject.toml), for a clear word when a
#: command needs one that is not installed (the SDK alone installs none of them).
_SERVER_MODULES = [
    "fastapi",
    "fastapi_offline",
    "starlette",
    "uvicorn",
    "duckdb",
    "pyarrow",
    "zstandard",
    "sqlalchemy",
    "pydantic",
    "yaml",
    "httpx",
    "genai_prices",
    "orjson",
    "psutil",
    "cryptography",
    "argon2",
    "authlib",
    "joserfc",
]
_EXTRA_OF = {
    **dict.fromkeys(_SERVER_MODULES, "server"),
    **dict.fromkeys(("openai", "anthropic"), "demo"),
    **dict.fromkeys(("clickhouse_connect", "chdb"), "clickhouse"),
    "psycopg": "postgres",
}


def _missing_extra(command: str, exc: ModuleNotFoundError) -> int:
    extra = _EXTRA_OF.get((exc.name or "").partition(".")[0])
    if extra is None:
        raise exc
    print(
        f"watchkeeper {command}: needs the '{extra}' extra ({exc.name} is not installed): "
        f"pip install 'watchkeeper[{extra}]'",
        file=sys.stderr,
    )
    return 2


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
    try:
        for command in COMMANDS:
            if argv and argv[0] == command.name and command.passthrough is not None:
                return command.passthrough(argv[1:])
        args = _parser().parse_args(argv)
        handler = next(c for c in COMMANDS if c.name == args.command).run
        assert handler is not None
        return handler(args)
    except ModuleNotFoundError as exc:  # an extra not installed: say which
        return _missing_extra(argv[0] if argv else "", exc)
