"""`watchkeeper report`: print the daily or weekly digest from the data directory's store."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from watchkeeper.errors import WatchkeeperError
from watchkeeper.store._protocol import Store


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="watchkeeper report", description="Print a digest.")
    p.add_argument("--period", choices=["daily", "weekly"], default="daily")
    p.add_argument("--format", choices=["text", "markdown", "html"], default="text")
    p.add_argument("--project", default=None, help="project (default: auth.default_project)")
    p.add_argument("--config", type=Path, help="YAML config file (or WATCHKEEPER_CONFIG)")
    p.add_argument("--data-dir", type=Path, help="where data is kept")
    return p


def run(argv: list[str]) -> int:
    """Parse arguments, open the store read-only for the run, print the digest."""
    from watchkeeper.alerting._config import load_alerting_config
    from watchkeeper.alerting._report import RENDERERS, collect_digest
    from watchkeeper.config import load_config

    args = _parser().parse_args(argv)
    try:
        overrides = {"server": {"data_dir": args.data_dir}} if args.data_dir else None
        config = load_config(args.config, overrides=overrides)
        slos = load_alerting_config(config.alerting).slos
        store = _open_store(config.span_store_path)
        try:
            project = args.project or config.auth.default_project
            digest = collect_digest(store, project, args.period, time.time(), slos)
        finally:
            store.close()
    except WatchkeeperError as exc:
        print(f"watchkeeper report: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(RENDERERS[args.format](digest))
    return 0


def _open_store(path: Path) -> Store:
    from watchkeeper.errors import StoreError
    from watchkeeper.store.duckdb import DuckDBStore

    if not path.exists():
        raise StoreError(f"no span store at {path}; pass --data-dir or --config of the server")
    try:
        return DuckDBStore(path)
    except Exception as exc:  # DuckDB locks its file against other processes
        raise StoreError(
            f"cannot open {path} ({exc}); the server holds it while it runs: "
            "stop it, or run the report on a copy of the data directory"
        ) from None
