"""Real servers for SDK tests: an ASGI app under uvicorn, and an OTLP/HTTP receiver."""

from __future__ import annotations

import gzip
import threading
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from tests.serving import serve_in_thread


def serve_asgi(app: Any) -> AbstractContextManager[str]:
    """Serve a test app (no lifespan) on an ephemeral 127.0.0.1 port; yields the base URL."""
    return serve_in_thread(app, lifespan="off", name="sdk-test-app")


class OtlpReceiver:
    """A minimal OTLP/HTTP traces receiver that keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":  # the SDK also sends its logs to /v1/logs
                    message = ExportTraceServiceRequest()
                    message.ParseFromString(body)
                    with receiver.got:
                        receiver.requests.append((dict(self.headers.items()), message))
                        receiver.got.notify_all()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def span_names(self) -> list[str]:
        """Names of every span received so far."""
        return [
            span.name
            for _, req in self.requests
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least `count` spans arrived."""
        with self.got:
            self.got.wait_for(lambda: len(self.span_names()) >= count, timeout)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class LogReceiver:
    """An OTLP/HTTP logs receiver keeping every request; `hold` makes it wait before answering
    (a slow server), until `release()`."""

    def __init__(self, hold: bool = False) -> None:
        self.requests: list[ExportLogsServiceRequest] = []
        self.started = threading.Semaphore(0)  # released as each request arrives
        self.released = threading.Event()
        if not hold:
            self.released.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/logs":  # spans the SDK may send go to /v1/traces
                    if self.headers.get("content-encoding") == "gzip":
                        body = gzip.decompress(body)
                    message = ExportLogsServiceRequest()
                    message.ParseFromString(body)
                    receiver.started.release()
                    receiver.released.wait(60)
                    receiver.requests.append(message)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def records(self) -> list[tuple[str, LogRecord]]:
        """(scope, record) of every log record received so far."""
        return [
            (sl.scope.name, r)
            for req in list(self.requests)
            for rl in req.resource_logs
            for sl in rl.scope_logs
            for r in sl.log_records
        ]

    def bodies(self) -> list[str]:
        """The string bodies received so far."""
        return [r.body.string_value for _, r in self.records()]

    def release(self) -> None:
        """Let held requests (and later ones) be answered."""
        self.released.set()

    def __enter__(self) -> LogReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
