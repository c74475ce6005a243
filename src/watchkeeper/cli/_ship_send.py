"""Parsed lines → an OTLP/HTTP protobuf logs request, and its delivery: retried while the
server is away or busy (never dropped), split on 413, a line the server refuses set aside
with its line number.

Only what the SDK installs: `opentelemetry-proto` (with the OTLP exporter the SDK depends
on) and the standard library's HTTP client, so an app's machine needs no server extra.
"""

from __future__ import annotations

import email.utils
import random
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from watchkeeper.cli._ship_parse import Parsed
from watchkeeper.errors import WatchkeeperError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 300.0
_INT64 = 2**63


@dataclass(frozen=True)
class Line:
    """One parsed line and where it came from (its number, for messages)."""

    number: int
    parsed: Parsed
    observed_ns: int


@dataclass
class Tally:
    """What was delivered, what the server refused and how often a send was retried."""

    sent: int = 0
    skipped: int = 0
    rejected: int = 0
    retries: int = 0
    skipped_lines: list[int] = field(default_factory=list)


def any_value(value: Any) -> AnyValue:
    """A JSON value as an OTLP AnyValue (lists and objects kept as arrays and key lists)."""
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int) and -_INT64 <= value < _INT64:
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list):
        out.array_value.values.extend(any_value(v) for v in value)
    elif isinstance(value, dict):
        out.kvlist_value.values.extend(_kv(k, v) for k, v in value.items())
    elif value is not None:
        out.string_value = str(value)  # an integer past int64
    return out


def _kv(key: Any, value: Any) -> KeyValue:
    return KeyValue(key=str(key), value=any_value(value))


def encode(lines: Sequence[Line], service: str, extra: dict[str, str]) -> bytes:
    """The protobuf request of `lines`: one resource per service (a line's own, else
    `service`), one scope per logger; `extra` attributes on every record."""
    groups: dict[tuple[str, str], list[LogRecord]] = defaultdict(list)
    for line in lines:
        p = line.parsed
        record = LogRecord(
            time_unix_nano=p.time_ns,
            observed_time_unix_nano=line.observed_ns,
            severity_number=p.severity_number,  # type: ignore[arg-type]
            severity_text=p.severity_text,
            body=any_value(p.body),
            trace_id=p.trace_id,
            span_id=p.span_id,
        )
        record.attributes.extend(_kv(k, v) for k, v in {**p.attributes, **extra}.items())
        groups[(p.service or service, p.scope)].append(record)
    resources: dict[str, ResourceLogs] = {}
    for (svc, scope), records in groups.items():
        if svc not in resources:
            resources[svc] = ResourceLogs()
            resources[svc].resource.attributes.append(_kv("service.name", svc))
        scoped = ScopeLogs(scope=InstrumentationScope(name=scope))
        scoped.log_records.extend(records)
        resources[svc].scope_logs.append(scoped)
    request = ExportLogsServiceRequest(resource_logs=list(resources.values()))
    return request.SerializeToString()


@dataclass(frozen=True)
class Answer:
    """The server's status, its `Retry-After` in seconds (or None) and the body."""

    status: int
    retry_after_s: float | None
    body: bytes


def retry_after_s(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class HttpPoster:
    """POSTs a protobuf body to `<url>/v1/logs` (standard library client)."""

    def __init__(self, url: str, key: str | None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/v1/logs"
        self.headers = {"Content-Type": "application/x-protobuf"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout_s = timeout_s

    def __call__(self, body: bytes) -> Answer:
        """Send once; an answer for every HTTP status, `OSError` when the server is unreachable."""
        request = urllib.request.Request(self.url, body, self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return Answer(response.status, None, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, retry_after_s(exc.headers.get("Retry-After")), exc.read())


class Deliverer:
    """Delivers batches until the server takes them; `deliver` returns only then."""

    def __init__(
        self,
        post: Callable[[bytes], Answer],
        service: str,
        extra: dict[str, str],
        err: TextIO = sys.stderr,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.post, self.service, self.extra = post, service, extra
        self.err, self.sleep = err, sleep
        self.tally = Tally()

    def deliver(self, lines: Sequence[Line]) -> None:
        """Send `lines`; retry while the server is away; split on 413; skip refused lines."""
        if not lines:
            return
        answer = self._until_answered(encode(lines, self.service, self.extra))
        if answer.status == 200:
            self._accepted(lines, answer.body)
        elif answer.status in (400, 413) and len(lines) > 1:
            half = len(lines) // 2
            self.deliver(lines[:half])
            self.deliver(lines[half:])
        elif answer.status in (400, 413):
            self._skip(lines[0], answer)
        else:
            text = answer.body.decode(errors="replace").strip()[:300]
            raise WatchkeeperError(
                f"{self.post_url()} answered {answer.status}: {text} (nothing was skipped; "
                "fix the URL or key and run again: shipping resumes where it stopped)"
            )

    def post_url(self) -> str:
        """Where requests go (for messages)."""
        return str(getattr(self.post, "url", "the server"))

    def _until_answered(self, body: bytes) -> Answer:
        delay = 0.5
        while True:
            wait: float | None = None
            try:
                answer = self.post(body)
            except OSError as exc:  # refused, reset, timed out: the server is away
                why = f"cannot reach {self.post_url()}: {exc}"
            else:
                if answer.status not in RETRY_STATUSES:
                    return answer
                why, wait = f"{self.post_url()} answered {answer.status}", answer.retry_after_s
            wait = (
                min(wait, MAX_RETRY_AFTER_S)
                if wait is not None
                else delay * random.uniform(0.8, 1.2)
            )
            self.tally.retries += 1
            if self.tally.retries == 1 or self.tally.retries % 10 == 0:
                print(f"watchkeeper logs ship: {why}; retrying in {wait:.1f} s", file=self.err)
            self.sleep(wait)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _accepted(self, lines: Sequence[Line], body: bytes) -> None:
        self.tally.sent += len(lines)
        response = ExportLogsServiceResponse()
        try:
            response.ParseFromString(body)
        except Exception:  # a 200 with any body is an acknowledgement
            return
        rejected = response.partial_success.rejected_log_records
        if rejected or response.partial_success.error_message:
            self.tally.rejected += rejected
            first, last = lines[0].number, lines[-1].number
            print(
                f"watchkeeper logs ship: lines {first}-{last}: the server refused {rejected} "
                f"record(s): {response.partial_success.error_message}",
                file=self.err,
            )

    def _skip(self, line: Line, answer: Answer) -> None:
        self.tally.skipped += 1
        self.tally.skipped_lines.append(line.number)
        text = answer.body.decode(errors="replace").strip()[:300]
        print(
            f"watchkeeper logs ship: line {line.number} skipped: the server answered "
            f"{answer.status} to it alone: {text}",
            file=self.err,
        )
