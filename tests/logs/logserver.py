"""`log_server`: a real Watchkeeper in a thread for the log tests that run senders against it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.serving import serve_in_thread
from watchkeeper.config import load_config
from watchkeeper.server._services import Services
from watchkeeper.server.app import build_services, create_app


@contextlib.contextmanager
def log_server(data_dir: Path, port: int = 0, **sections: Any) -> Iterator[tuple[str, Services]]:
    """A server with auth off (and `sections` of config), on `port` or an ephemeral one;
    yields its URL and its services."""
    overrides = {
        "server": {"data_dir": str(data_dir), "port": 0},
        "auth": {"required": False},
        **sections,
    }
    config = load_config(env={}, overrides=overrides)
    svc = build_services(config)
    with serve_in_thread(create_app(config, services=svc), name="logs-server", port=port) as url:
        yield url, svc
