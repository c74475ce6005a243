"""`watchkeeper report`: print the daily or weekly digest.

With `--url` the figures come from a running server's query API (the usual case: the server
holds the DuckDB file's lock); without it, from the data directory's store, opened directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from watchkeeper.alerting import RENDERERS, Digest, SloLine, collect_digest
from watchkeeper.errors import StoreError, WatchkeeperError
from watchkeeper.store import Dimension, Group, SpanFilter, Store, Summary

_SUMMARY_FIELDS = {f.name for f in dataclasses.fields(Summary)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="watchkeeper report", description="Print a digest.")
    p.add_argument("--period", choices=["daily", "weekly"], default="daily")
    p.add_argument("--format", choices=["text", "markdown", "html"], default="text")
    p.add_argument("--project", default=None, help="project (default: auth.default_project)")
    p.add_argument("--url", help="a running server, e.g. http://127.0.0.1:4318")
    p.add_argument("--api-key", help="API key for --url (or WATCHKEEPER_API_KEY)")
    p.add_argument("--config", type=Path, help="YAML config file (or WATCHKEEPER_CONFIG)")
    p.add_argument("--data-dir", type=Path, help="where data is kept")
    return p


class HttpReader:
    """The store queries a digest needs, answered by a server's query API."""

    def __init__(self, url: str, project: str, api_key: str | None) -> None:
        headers = {"X-Watchkeeper-Project": project}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            r = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the server at {self._http.base_url}: {exc}") from None
        if r.status_code != 200:
            raise StoreError(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    @staticmethod
    def _params(f: SpanFilter) -> dict[str, Any]:
        # the API's unit: unix milliseconds
        return {"start": (f.start_ns or 0) / 1e6, "end": (f.end_ns or 0) / 1e6, "scope": f.scope}

    def summary(
        self, f: SpanFilter, last_n: int | None = None, *, percentiles: bool = True
    ) -> Summary:
        """`GET /api/v1/summary`."""
        params = {**self._params(f), "percentiles": str(percentiles).lower()}
        return _summary(self._get("/api/v1/summary", params))

    def breakdown(
        self,
        f: SpanFilter,
        by: Dimension,
        limit: int = 20,
        order: str = "count",
        *,
        percentiles: bool = True,
    ) -> list[Group]:
        """`GET /api/v1/breakdown`."""
        params = {**self._params(f), "by": by, "limit": limit, "order": order}
        params["percentiles"] = str(percentiles).lower()
        groups = self._get("/api/v1/breakdown", params)["groups"]
        return [Group(g.get("key"), _summary(g)) for g in groups]

    def slo_lines(self) -> list[SloLine]:
        """SLOs of the project from `GET /api/v1/slos` (none when alerting is off)."""
        try:
            items = self._get("/api/v1/slos", {})["items"]
        except StoreError:
            return []
        return [
            SloLine(s.get("name") or s["id"], s["objective"], s["sli_value"], s["budget_remaining"])
            for s in items
        ]

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()


def _summary(data: dict[str, Any]) -> Summary:
    return Summary(**{k: v for k, v in data.items() if k in _SUMMARY_FIELDS})


def _from_server(args: argparse.Namespace, project: str) -> Digest:
    import os

    reader = HttpReader(args.url, project, args.api_key or os.environ.get("WATCHKEEPER_API_KEY"))
    try:
        digest = collect_digest(reader, project, args.period, time.time())
        return dataclasses.replace(digest, slos=tuple(reader.slo_lines()))
    finally:
        reader.close()


def _from_files(args: argparse.Namespace) -> Digest:
    from watchkeeper.alerting import alerting_of
    from watchkeeper.config import load_config

    overrides = {"server": {"data_dir": args.data_dir}} if args.data_dir else None
    config = load_config(args.config, overrides=overrides)
    slos = alerting_of(config).slos
    store = _open_store(config.span_store_path)
    try:
        project = args.project or config.auth.default_project
        return collect_digest(store, project, args.period, time.time(), slos)
    finally:
        store.close()


def report_main(argv: Sequence[str]) -> int:
    """`watchkeeper report --period daily|weekly [--format text|markdown|html]`: parse the
    arguments, gather the figures, print the digest."""
    args = _parser().parse_args(list(argv))
    try:
        digest = _from_server(args, args.project or "default") if args.url else _from_files(args)
    except WatchkeeperError as exc:
        print(f"watchkeeper report: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(RENDERERS[args.format](digest))
    return 0


def _open_store(path: Path) -> Store:
    from watchkeeper.store.duckdb import DuckDBStore

    if not path.exists():
        raise StoreError(f"no span store at {path}; pass --data-dir or --config of the server")
    try:
        return DuckDBStore(path)
    except Exception as exc:  # DuckDB locks its file against other processes
        raise StoreError(
            f"cannot open {path} ({exc}); the server holds it while it runs: "
            "use --url http://HOST:PORT to ask the running server instead"
        ) from None
