"""The benchmark's log records: OTLP protobuf requests for the senders, `LogRow`s for the
search store, both from the same generator.

A record: a ~200-byte body of varied words (a request id unique to the record among them,
as real logs carry), 10 attributes, a trace and span id on 30% of them, one of eight
services, severities mostly info. A sender's request is a template whose records' ids are
stamped in by replacing one placeholder (bytes.replace: the senders must not eat the CPU
the server is measured on). A stamped record is its template's twin but for the id (same
time, attributes, trace id, body otherwise): there are enough templates (`templates`) that
no twin shares a row group of the store with another.
"""

from __future__ import annotations

import random
import time

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from watchkeeper.model import LogRow
from watchkeeper.store.duckdb_logs import CHECKPOINT_ROWS

SERVICES = ("checkout", "search", "auth", "gateway", "llm-proxy", "billing", "worker", "mailer")
WORDS = (
    "request", "response", "cache", "miss", "hit", "retry", "upstream", "user", "order",
    "session", "token", "model", "latency", "queue", "batch", "connection", "pool", "payment",
    "inventory", "stream", "prompt", "completion", "embedding", "vector", "index", "shard",
)  # fmt: skip
#: Severity numbers with their weights: mostly info, some debug and warn, a few errors.
SEVERITIES = ((9, 70), (5, 15), (13, 10), (17, 4), (21, 1))
TEXTS = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR", 21: "FATAL"}
PLACEHOLDER = b"@@@@@@@@"  # 8 bytes: a request's number, in hex, stamped into every record
RARE = "needle"  # in one record of 20,000: the word the search looks for


def body(rng: random.Random, ident: str, i: int) -> str:
    """A ~200-byte log line with `ident` (a request id) among its words."""
    words = " ".join(rng.choices(WORDS, k=12))
    line = (
        f"req={ident} {rng.choice(('GET', 'POST'))} /api/v1/{rng.choice(WORDS)}/"
        f"{rng.randint(1, 10**6)} took {rng.randint(1, 5000)}ms "
        f"status={rng.choice((200, 200, 200, 404, 500))} user=u{rng.randint(1, 5000)} {words}"
    )
    if i % 20_000 == 7:
        line += f" a {RARE} in the haystack"
    return (line + " " + " ".join(rng.choices(WORDS, k=8)))[:200]


def attributes(rng: random.Random) -> dict[str, str | int]:
    """Ten attributes, strings and integers of a few hundred values each."""
    return {
        f"attr.{k}": (f"v{rng.randint(1, 300)}" if k % 2 else rng.randint(1, 999))
        for k in range(10)
    }


def severity(rng: random.Random) -> int:
    """A severity number, mostly info."""
    return rng.choices([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])[0]


def _kv(key: str, value: str | int) -> KeyValue:
    v = AnyValue(string_value=value) if isinstance(value, str) else AnyValue(int_value=value)
    return KeyValue(key=key, value=v)


#: The fewest templates. With 8 and nothing more, seven records in eight had a twin within
#: a few requests, and DuckDB's zstd and dictionaries found them (the same 250k records took
#: 116-123 bytes a record written 500-2,000 at a time, 66 written 10,000 at a time).
MIN_TEMPLATES = 8


def templates(records: int, per_request: int) -> int:
    """How many request templates the senders cycle through: enough for a row group of the
    DuckDB log store (its checkpoint unit, `CHECKPOINT_ROWS`) of distinct records, or for
    every record when there are fewer."""
    return max(MIN_TEMPLATES, -(-min(records, CHECKPOINT_ROWS) // per_request))


def template(seed: int, records: int, now_ns: int | None = None) -> bytes:
    """A request of `records` records of every service, timed over the last second, each
    body holding `PLACEHOLDER` (replace it to make the records unique)."""
    rng = random.Random(seed)
    now_ns = now_ns or time.time_ns()
    req = ExportLogsServiceRequest()
    per = -(-records // len(SERVICES))
    for s, service in enumerate(SERVICES):
        rl = req.resource_logs.add()
        for k, v in (("service.name", service), ("deployment.environment.name", "prod"),
                     ("host.name", f"{service}-{seed % 3}")):  # fmt: skip
            rl.resource.attributes.append(_kv(k, v))
        sl = rl.scope_logs.add()
        sl.scope.name = f"{service}.app"
        for i in range(min(per, records - s * per)):
            n = s * per + i
            sev = severity(rng)
            r = LogRecord(
                time_unix_nano=now_ns - rng.randint(0, 10**9),
                observed_time_unix_nano=now_ns,
                severity_number=sev,  # type: ignore[arg-type]
                severity_text=TEXTS[sev],
            )
            r.body.string_value = body(rng, PLACEHOLDER.decode() + f"{n:04x}", n + seed)
            r.attributes.extend(_kv(k, v) for k, v in attributes(rng).items())
            if rng.random() < 0.3:
                r.trace_id = rng.getrandbits(128).to_bytes(16, "big")
                r.span_id = rng.getrandbits(64).to_bytes(8, "big")
            sl.log_records.append(r)
    return req.SerializeToString()


def stamp(template_body: bytes, no: int) -> bytes:
    """The template with request number `no` in every record (so every record is new)."""
    return template_body.replace(PLACEHOLDER, f"{no & 0xFFFFFFFF:08x}".encode())


def probe(word: str) -> bytes:
    """One record whose body holds `word` (unique: the probe finds it by search)."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(_kv("service.name", "bench-probe"))
    r = rl.scope_logs.add().log_records.add()
    r.time_unix_nano = r.observed_time_unix_nano = time.time_ns()
    r.severity_number = 9  # type: ignore[assignment]
    r.body.string_value = f"probe {word} sent"
    return req.SerializeToString()


def rows(start: int, n: int, total: int, start_ns: int, span_ns: int) -> list[LogRow]:
    """Records `start`..`start + n` of a store of `total` records spread evenly from
    `start_ns` over `span_ns`, as the ingest path would store them (project `bench`)."""
    rng = random.Random(start)
    out = []
    for i in range(start, start + n):
        service = SERVICES[i % len(SERVICES)]
        t = start_ns + i * span_ns // total
        traced = rng.random() < 0.3
        sev = severity(rng)
        resource = {"service.name": service, "deployment.environment.name": "prod",
                    "host.name": f"{service}-{i % 3}"}  # fmt: skip
        out.append(LogRow(
            "bench", f"{i:016x}", t, t, sev, TEXTS[sev], body(rng, f"{i:012x}", i),
            f"{rng.getrandbits(128):032x}" if traced else "",
            f"{rng.getrandbits(64):016x}" if traced else "", service, "prod",
            f"{service}-{i % 3}", f"{service}.app", "", orjson.dumps(attributes(rng)).decode(),
            orjson.dumps(resource).decode(),
        ))  # fmt: skip
    return out
