"""Limits of the API on a real server: rate per credential and per address (429 +
Retry-After, counted), bodies bounded in size (413) and time (408); probes and OTLP ingest
not counted. And the token buckets themselves, as a table over a fake clock."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.requests import HTTPConnection

from tests.server.conftest import Running
from watchkeeper.server._auth import fingerprint
from watchkeeper.server._limits import TokenBuckets, credential_key
from watchkeeper.server._roles import Role

#: A rate so low no token comes back while a test runs: every count below is exact.
NEVER = 0.0001
WIDE = {"address_rate": 1e6, "address_burst": 10**6}  # keeps the address limit out of the way


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # (time, action) -> wait seen before the action; rate 2/s, burst 3
        ([(0.0, "take"), (0.0, "take"), (0.0, "take"), (0.0, "wait")], [0, 0, 0, 0.5]),
        ([(0.0, "take")] * 3 + [(0.25, "wait"), (0.5, "take"), (0.5, "wait")],
         [0] * 3 + [0.25, 0, 0.5]),
        ([(0.0, "take")] * 3 + [(10.0, "take"), (10.0, "take"), (10.0, "take"), (10.0, "wait")],
         [0] * 6 + [0.5]),  # refilled to the burst, never above it
    ],
)  # fmt: skip
def test_token_bucket_table(steps: list[tuple[float, str]], expected: list[float]) -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    seen = []
    for (at, action), _ in zip(steps, expected, strict=True):
        clock.now = 100.0 + at
        seen.append(buckets.wait("k"))
        if action == "take":
            buckets.take("k")
    assert seen == pytest.approx(expected)
    assert buckets.wait("another") == 0  # each key its own bucket


def test_token_buckets_hold_a_bounded_number_of_keys() -> None:
    clock = Clock()
    buckets = TokenBuckets(1.0, 2, clock=clock, max_keys=10)
    for i in range(1000):
        buckets.take(f"k{i}")
        assert len(buckets) <= 10
    buckets.take("hot")
    buckets.take("hot")
    assert buckets.wait("hot") > 0  # the one just used is kept
    with pytest.raises(ValueError):
        TokenBuckets(0, 1)


def _connection(*headers: tuple[str, str]) -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return HTTPConnection({"type": "http", "headers": raw, "path": "/api/v1/summary"})


def test_a_credential_is_known_by_the_hash_of_its_token_whatever_header_carries_it() -> None:
    token = "wk_" + "t" * 43
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert credential_key(_connection(("Authorization", f"Bearer {token}"))) == digest
    assert credential_key(_connection(("X-API-Key", token))) == digest
    assert digest[:8] in fingerprint(token)  # the auth log names the same credential
    malformed = credential_key(_connection(("Authorization", "Basic abc")))
    assert malformed is not None and malformed != digest  # counted too, as sent
    assert credential_key(_connection()) is None
    # A session cookie counts once the server names it; other cookies never do.
    session = _connection(("Cookie", f"theme=dark; wk_session={token}"))
    assert credential_key(session) is None
    assert credential_key(session, ("wk_session",)) == digest
    assert credential_key(_connection(("Cookie", "theme=dark")), ("wk_session",)) is None


def _keys(server: Running, *roles: Role) -> list[str]:
    return [server.services.keys.create("shop", f"k{i}", role=r)[1] for i, r in enumerate(roles)]


def _get(server: Running, token: str | None, path: str = "/api/v1/summary") -> httpx.Response:
    return server.get(path, token, params={"range": "1h"})


def _refused(server: Running, reason: str) -> float:
    value = server.services.registry.get_sample_value(
        "watchkeeper_api_refused_total", {"reason": reason}
    )
    return float(value or 0)


@pytest.mark.slow
def test_a_burst_past_a_credentials_bucket_gets_429_with_retry_after(
    make_server: Callable[..., Running],
) -> None:
    server = make_server(limits={"credential_rate": NEVER, "credential_burst": 5, **WIDE})
    first, second = _keys(server, Role.VIEWER, Role.VIEWER)

    def one(_: int) -> httpx.Response:
        return _get(server, first)

    with ThreadPoolExecutor(12) as pool:  # at once, from one address
        answers = list(pool.map(one, range(12)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 5 + [429] * 7
    refused = next(r for r in answers if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    message = refused.json()["error"]
    assert "too many requests with this credential" in message
    assert "limits.credential_rate" in message and first not in message
    assert _refused(server, "rate_credential") == 7
    # Another key has its own bucket; the probes and the UI's files are never counted.
    assert _get(server, second).status_code == 200
    for path in ("/healthz", "/readyz", "/ui/index.html"):
        assert server.get(path, first).status_code == 200, path
    metrics = server.get("/metrics", second).text
    assert 'watchkeeper_api_refused_total{reason="rate_credential"} 7.0' in metrics


@pytest.mark.slow
def test_a_client_address_has_a_bucket_whatever_credentials_it_sends(
    make_server: Callable[..., Running],
) -> None:
    server = make_server(limits={"address_rate": NEVER, "address_burst": 6})
    tokens = _keys(server, Role.VIEWER, Role.EDITOR, Role.ADMIN)
    # Three keys, a made-up one and none: the address pays for each.
    senders = [*tokens, "wk_" + "x" * 43, None, tokens[0]]
    statuses = [_get(server, t).status_code for t in senders]
    assert statuses == [200, 200, 200, 401, 401, 200]
    refused = _get(server, tokens[1])
    assert refused.status_code == 429
    assert "too many requests from this address" in refused.json()["error"]
    assert _refused(server, "rate_address") == 1
    assert server.get("/healthz").status_code == 200  # probes are never refused


@pytest.mark.slow
def test_ingest_is_bounded_by_its_own_admission_not_the_api_rate(
    make_server: Callable[..., Running],
) -> None:
    server = make_server(limits={"credential_rate": NEVER, "credential_burst": 1, **WIDE})
    (key,) = _keys(server, Role.EDITOR)
    assert _get(server, key).status_code == 200
    assert _get(server, key).status_code == 429
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("op"):
        pass
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {key}"}
    )
    for _ in range(3):
        assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS


@pytest.mark.slow
def test_a_body_over_the_limit_gets_413_declared_or_not(
    make_server: Callable[..., Running],
) -> None:
    server = make_server(limits={"max_body_bytes": 1000})
    (key,) = _keys(server, Role.EDITOR)
    rule = {"id": "fits", "kind": "latency", "statistic": "p95", "threshold": 500, "window": "5m"}
    assert server.request("POST", "/api/v1/rules", key, json=rule).status_code == 201
    big = {**rule, "id": "big", "runbook": "x" * 2000}
    r = server.request("POST", "/api/v1/rules", key, json=big)
    assert r.status_code == 413
    assert "over the 1000 byte limit" in r.json()["error"]
    assert "limits.max_body_bytes" in r.json()["error"]

    def chunks() -> object:  # no Content-Length: the limit holds as the bytes arrive
        yield b'{"id": "chunked", "runbook": "'
        for _ in range(10):
            yield b"y" * 200
        yield b'"}'

    r = server.request("POST", "/api/v1/rules", key, content=chunks())
    assert r.status_code == 413
    assert _refused(server, "too_large") == 2
    assert server.get("/api/v1/rules/big", key).status_code == 404  # nothing half-done


def _raw_request(url: str, head: bytes, body_start: bytes) -> bytes:
    """Send the head and the first bytes of a body, then stall; what the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head + body_start)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


@pytest.mark.slow
def test_a_body_that_trickles_is_cut_off_with_408(make_server: Callable[..., Running]) -> None:
    server = make_server(limits={"body_timeout_s": 0.5})
    (key,) = _keys(server, Role.EDITOR)
    head = (
        b"POST /api/v1/rules HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 500\r\n\r\n"
    )
    answer = _raw_request(server.url, head, b'{"id": "slow"')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"the body did not arrive within 0.5 s" in answer
    assert b"limits.body_timeout_s" in answer
    assert b"connection: close" in answer.lower()
    assert _refused(server, "too_slow") == 1
    assert server.get("/healthz").status_code == 200
