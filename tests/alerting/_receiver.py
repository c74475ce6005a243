"""A real HTTP webhook receiver on 127.0.0.1 for alerting tests: records bodies, can fail."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Collects POSTed JSON; answers `status` (with `retry_after` when set) until told otherwise."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.status = 200
        self.retry_after: str | None = None
        self.arrived = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.status
                # Record before answering: a sender that saw the answer may look at once.
                with receiver.arrived:
                    if status == 200:
                        receiver.received.append(json.loads(body))
                    else:
                        receiver.refused += 1
                    receiver.arrived.notify_all()
                self.send_response(status)
                if status != 200 and receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return None

        return Handler

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()

    def wait_for(self, n: int, timeout: float) -> list[dict[str, Any]]:
        """Block until `n` bodies arrived (or the timeout passed); return what arrived."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= n, timeout)
            return list(self.received)
