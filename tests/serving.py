"""`serve_in_thread`: the one way tests run an ASGI app (our server or a test app) for real."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

from tests.eventually import eventually


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    lifespan: Literal["auto", "on", "off"] = "auto",
    name: str = "test-server",
    start_timeout_s: float = 60.0,
    port: int = 0,
) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (an ephemeral port, or `port` to come back on
    the same one) in a daemon thread; yield its base URL; on exit stop it (the app's
    lifespan shutdown included) and wait for the thread."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name=name, daemon=True)
    thread.start()
    try:
        eventually(lambda: uv.started or not thread.is_alive(), start_timeout_s)
        if not uv.started:
            raise RuntimeError(f"{name}: the server did not start (or exited while starting)")
        port = uv.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
