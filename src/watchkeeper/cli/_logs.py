"""`watchkeeper logs ACTION`: the logs commands (today `ship`). The shipping code loads
only when it runs, so `watchkeeper --help` imports no protobuf."""

from __future__ import annotations

import argparse
from pathlib import Path

from watchkeeper.cli._commands import Command, _guarded

DEFAULT_URL = "http://127.0.0.1:4318"
DEFAULT_SERVICE = "unknown_service"


def ship_options(p: argparse.ArgumentParser) -> None:
    """Declare the options of `logs ship`."""
    p.add_argument("file", metavar="FILE|-", help="the file to follow, or - for standard input")
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server (default {DEFAULT_URL})")
    p.add_argument("--key", help="an ingest key of the project (or WATCHKEEPER_API_KEY)")
    p.add_argument(
        "--service",
        default=DEFAULT_SERVICE,
        help="service.name of lines that name none (default unknown_service)",
    )
    p.add_argument("--batch-size", type=int, default=500, help="lines per request (500)")
    p.add_argument(
        "--flush-interval",
        type=float,
        default=1.0,
        help="seconds a line waits for its batch to fill (1.0)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="read to the end, send, and exit (else follow like tail -F)",
    )
    p.add_argument(
        "--state", type=Path, help="the state file (default .FILE.ship-state beside FILE)"
    )


def _options(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    ship_options(sub.add_parser("ship", help="send an app's log lines (a file or stdin)"))


def _run(args: argparse.Namespace) -> int:
    from watchkeeper.cli._ship import ship

    return ship(args)


LOGS = Command(
    "logs", "ship an app's log lines (a file or stdin) to the server", _options, _guarded(_run)
)
