"""A ClickHouse HTTP interface in front of chDB: a real HTTP server that a store opened with
`http://127.0.0.1:PORT` talks to as to a ClickHouse server, and that a test can stop and start
again on the same port (a ClickHouse server going down and coming back).

It serves what clickhouse-connect's HTTP client sends: queries in the body (or the `query`
parameter) with `param_*` bindings and settings as URL parameters, answers in the format
the query names (Native for the client's reads), INSERT data in the body (any input format,
compressed or not), errors as ClickHouse sends them (HTTP 500, the exception code header).
The engine is the test session's chDB (one per process); every request runs on one
connection, one at a time, in the database the request names.
"""

from __future__ import annotations

import gzip
import re
import threading
import zlib
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame
import zstandard

#: URL parameters that are the HTTP interface's own, not settings of the query.
_TRANSPORT = {
    "query", "database", "default_format", "session_id", "session_timeout", "query_id",
    "compress", "decompress", "enable_http_compression", "user", "password", "quota_key",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "wait_end_of_query",
    "buffer_size", "cancel_http_readonly_queries_on_client_close", "session_check",
    "client_protocol_version",
}  # fmt: skip
_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s", re.IGNORECASE)
_UNPACK = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "lz4": lz4.frame.decompress,
    "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
}


class ChdbHttp:
    """The server: `start()` listens on `port` (0: any), `stop()` closes it (clients are
    refused until `start()` again), `requests` counts the queries answered."""

    def __init__(self, path: str, port: int = 0) -> None:
        self._conn: Any = chdb.connect(path)
        self._lock = threading.Lock()
        self.port = port
        self.requests = 0
        #: statements matching this pattern fail (HTTP 500), as on a server that runs out of
        #: memory or parts halfway through a write
        self.refuse: str | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The address a store is given."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening; connections made before are closed after their answer."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def rows(self, sql: str) -> list[list[Any]]:
        """The rows of `sql`, straight from the engine (what the test checks)."""
        import json

        with self._lock:
            out = self._conn.query(sql, "JSONCompact").bytes()
        return list(json.loads(out)["data"])

    def close(self) -> None:
        """Stop, and release the engine's connection."""
        self.stop()
        self._conn.close()

    def run(self, params: dict[str, str], body: bytes) -> tuple[bytes, str]:
        """Answer one request: (the bytes, their format)."""
        sql = params.get("query", "")
        data = b""
        if sql and _INSERT.match(sql) and _FORMAT.search(sql):
            data = body  # the query in the URL, its rows in the body
        else:
            sql = f"{sql} {body.decode()}".strip() if sql else body.decode()
        bindings = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in _TRANSPORT and k not in bindings
                    and not k.startswith("param_")}  # fmt: skip
        if self.refuse is not None and re.search(self.refuse, sql):
            raise RuntimeError(f"Code: 241. DB::Exception: refused by the test: {sql[:60]}")
        with self._lock:
            self.requests += 1
            self._conn.query(f"USE {params.get('database', 'default')}")
            for name, value in settings.items():
                if re.fullmatch(r"\w+", name):
                    self._conn.query(f"SET {name} = {_literal(value)}")
            found = _FORMAT.search(sql)
            fmt = found.group(1) if found else params.get("default_format", "TabSeparated")
            if found:
                sql = sql[: found.start()]
            if _INSERT.match(sql):
                if data or found:
                    with self._conn.send_insert(sql, fmt) as ins:
                        ins.append(data)
                        ins.finish()
                else:
                    self._conn.query(sql, "TabSeparated", params=bindings or None)
                return b"", "TabSeparated"
            result = self._conn.query(sql, fmt, params=bindings or None)
        return result.bytes(), fmt


def _literal(value: str) -> str:
    return value if re.fullmatch(r"-?\d+(\.\d+)?", value) else "'" + value.replace("'", "''") + "'"


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body (what the client sends for long queries)."""
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def _handler(owner: ChdbHttp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a stop refuses the next

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test's output is the store's."""

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/ping":
                self._send(200, b"Ok.\n", {})
            else:
                self._answer(b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            coding = (self.headers.get("Content-Encoding") or "").strip()
            if coding:
                body = _UNPACK[coding](body)
            kind = self.headers.get("Content-Type") or ""
            if kind.startswith("multipart/form-data"):  # the query and its bindings as fields
                self._answer(b"", _form_fields(kind, body))
            else:
                self._answer(body)

        def _answer(self, body: bytes, fields: dict[str, str] | None = None) -> None:
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            params |= fields or {}
            try:
                out, fmt = owner.run(params, body)
            except Exception as exc:  # the engine's error, as a ClickHouse server sends it
                text = str(exc)
                code = re.search(r"Code: (\d+)", text)
                headers = {"X-ClickHouse-Exception-Code": code.group(1) if code else "1000"}
                self._send(500, f"{text}\n".encode(), headers)
                return
            self._send(200, out, {"X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": "UTC"})

        def _send(self, status: int, out: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler
