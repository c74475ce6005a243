"""Ingest load, breaching requests and a webhook receiver that notes arrival times."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from bench.ingest._workload import stamp, template
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = {"Content-Type": "application/x-protobuf"}


class Receiver:
    """A webhook receiver recording (monotonic arrival time, body) of each notification."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                at = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.cond:
                    receiver.arrivals.append((at, json.loads(body)))
                    receiver.cond.notify_all()

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_firing(self, service: str, timeout: float) -> float | None:
        """Arrival time of the firing notification for `service`, or None after `timeout`."""

        def found() -> float | None:
            for at, body in self.arrivals:
                if body.get("status") == "firing" and body["labels"].get("service") == service:
                    return at
            return None

        with self.cond:
            self.cond.wait_for(lambda: found() is not None, timeout)
            return found()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def _kv(key: str, value: str) -> KeyValue:
    kv = KeyValue(key=key)
    kv.value.string_value = value
    return kv


def breach_body(service: str, n: int = 20) -> bytes:
    """`n` root spans of `service`, every one of them timed out."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", service))
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for _ in range(n):
        span = Span(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name="POST /chat",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now - 8_000_000_000,
            end_time_unix_nano=now,
            status=Status(code=Status.STATUS_CODE_ERROR, message="deadline exceeded"),
        )
        span.attributes.extend(
            [_kv("watchkeeper.outcome", "timeout"), _kv("error.type", "Timeout")]
        )
        ss.spans.append(span)
    return request.SerializeToString()


class Load:
    """Background ingest at a steady number of spans per second (requests of 200 spans)."""

    def __init__(
        self, url: str, spans_per_s: int, spans_per_request: int = 200, senders: int = 3
    ) -> None:
        self.url = url
        self.per_request = spans_per_request
        self.interval = spans_per_request * senders / spans_per_s
        self.bodies = [template(seed, spans_per_request) for seed in range(4)]
        self.sent = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(senders)
        ]

    def start(self) -> Load:
        """Start sending."""
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def _run(self, sender: int) -> None:
        run_id = (int(time.time()) + sender * 7919) & 0x7FFFFFFF
        next_at = time.monotonic()
        no = 0
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                body = stamp(self.bodies[no % len(self.bodies)], no, run_id)
                r = client.post(f"{self.url}/v1/traces", content=body, headers=PROTOBUF)
                with self._lock:
                    if r.status_code == 200:
                        self.sent += self.per_request
                    else:
                        self.refused += 1
                no += 1
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> float:
        """Stop; return the achieved spans per second."""
        self._stop.set()
        for t in self._threads:
            t.join()
        return self.sent / (time.monotonic() - self.started)
