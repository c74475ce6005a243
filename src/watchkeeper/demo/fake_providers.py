"""Fake OpenAI- and Anthropic-compatible HTTP servers, for tests and the demo.

Each server is a real HTTP server on 127.0.0.1 (uvicorn in a thread) that answers the real client
packages: OpenAI chat completions (plain and SSE streamed, with `stream_options.include_usage`),
the Responses API (plain and streamed), embeddings; Anthropic messages (plain and streamed).

What a request meets is decided by a *profile*, a function of the request to a `Behaviour`:
- `scripted` (the default) reads `x-fake-*` request headers, so a test picks the failure it wants;
- `RandomProfile` draws a realistic mix for the demo: log-normal latency with a tail past 8 s,
  about 3% 429s and 2% 500s, and some answers served from the provider's prompt cache.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from watchkeeper.demo import _wire as wire
from watchkeeper.demo._tools import plan

#: The snapshot a provider reports for a model alias (request model ≠ response model, as live).
SNAPSHOTS: Mapping[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "claude-sonnet-4": "claude-sonnet-4-20250514",
    "claude-3-5-haiku": "claude-3-5-haiku-20241022",
}


@dataclass(frozen=True)
class FakeRequest:
    """What a profile sees of one request."""

    provider: str  # "openai" | "anthropic"
    endpoint: str  # "chat" | "responses" | "embeddings" | "messages"
    model: str
    stream: bool
    attempt: int  # the client's retry count (x-stainless-retry-count), 0 for the first try
    headers: Mapping[str, str]
    prompt: str = ""


@dataclass(frozen=True)
class Behaviour:
    """How the fake provider answers one request."""

    status: int = 200
    latency_s: float = 0.0  # before the response (or the first stream event)
    chunk_delay_s: float = 0.0  # between stream events
    retry_after_s: float | None = None
    cached_fraction: float = 0.0  # share of input tokens reported as read from the cache
    cache_write_fraction: float = 0.0  # share reported as written to the cache (Anthropic)
    reasoning_tokens: int = 0
    answer_words: int = 24


Profile = Callable[[FakeRequest], Behaviour]


def _float(headers: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(headers.get(name, default))
    except ValueError:
        return default


def scripted(request: FakeRequest) -> Behaviour:
    """The behaviour the request's `x-fake-*` headers ask for (a plain success without any).

    `x-fake-status` fails with that status the first `x-fake-fail-attempts` attempts (default:
    every attempt), `x-fake-retry-after` adds the header, `x-fake-latency` and
    `x-fake-chunk-delay` slow it down, `x-fake-cached` / `x-fake-cache-write` are fractions of
    input tokens reported as cache reads/writes, `x-fake-reasoning` a reasoning token count.
    """
    h = request.headers
    status = int(_float(h, "x-fake-status", 200))
    if request.attempt >= _float(h, "x-fake-fail-attempts", math.inf):
        status = 200
    retry_after = h.get("x-fake-retry-after")
    return Behaviour(
        status=status,
        latency_s=_float(h, "x-fake-latency", 0.0),
        chunk_delay_s=_float(h, "x-fake-chunk-delay", 0.0),
        retry_after_s=float(retry_after) if retry_after else None,
        cached_fraction=_float(h, "x-fake-cached", 0.0),
        cache_write_fraction=_float(h, "x-fake-cache-write", 0.0),
        reasoning_tokens=int(_float(h, "x-fake-reasoning", 0)),
        answer_words=int(_float(h, "x-fake-words", 24)),
    )


@dataclass
class RandomProfile:
    """A realistic, seeded mix of behaviours for the demo (and, with higher rates, its test).

    `time_scale` multiplies every latency so a test can see the tail in a fraction of a second.
    """

    seed: int | None = None
    rate_429: float = 0.03
    rate_500: float = 0.02
    tail_rate: float = 0.03  # calls slower than `tail_s` (past the usual 8 s deadline)
    tail_s: tuple[float, float] = (8.5, 14.0)
    cache_rate: float = 0.25
    median_s: Mapping[str, float] = field(
        default_factory=lambda: {"embeddings": 0.08, "mini": 0.6, "haiku": 0.7, "large": 1.6}
    )
    sigma: float = 0.5
    time_scale: float = 1.0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __call__(self, request: FakeRequest) -> Behaviour:
        """Draw the behaviour of one request."""
        with self._lock:
            return self._draw(request)

    def _draw(self, request: FakeRequest) -> Behaviour:
        rng = self._rng
        roll = rng.random()
        status = (
            429 if roll < self.rate_429 else 500 if roll < self.rate_429 + self.rate_500 else 200
        )
        median = self.median_s[_size_class(request)]
        latency = rng.lognormvariate(math.log(median), self.sigma)
        if status == 200 and request.endpoint != "embeddings" and rng.random() < self.tail_rate:
            latency = rng.uniform(*self.tail_s)
        elif status != 200:
            latency = min(latency, 0.3)
        cached = rng.uniform(0.3, 0.9) if rng.random() < self.cache_rate else 0.0
        reasoning = rng.randint(40, 400) if request.model.startswith(("o", "gpt-5")) else 0
        return Behaviour(
            status=status,
            latency_s=latency * self.time_scale,
            chunk_delay_s=0.03 * self.time_scale,
            retry_after_s=round(rng.uniform(0.2, 1.0) * self.time_scale, 3)
            if status == 429
            else None,
            cached_fraction=cached,
            cache_write_fraction=0.1 if request.provider == "anthropic" and not cached else 0.0,
            reasoning_tokens=reasoning,
            answer_words=rng.randint(12, 80),
        )


def _size_class(request: FakeRequest) -> str:
    if request.endpoint == "embeddings":
        return "embeddings"
    if "haiku" in request.model:
        return "haiku"
    return "mini" if "mini" in request.model or "nano" in request.model else "large"


class _Handler:
    """The shared request handling of both fake providers."""

    def __init__(
        self,
        provider: str,
        profile: Profile,
        log: deque[FakeRequest] | None,
        closing: threading.Event | None,
    ) -> None:
        self.provider = provider
        self.profile = profile
        self.log = log if log is not None else deque(maxlen=1000)
        self.closing = closing or threading.Event()

    async def pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False if the server began closing meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.closing.is_set():
                return False
            # Short naps so a slow answer never holds up the server's shutdown.
            await asyncio.sleep(min(left, 0.05))
        return not self.closing.is_set()

    async def begin(
        self, request: Request, endpoint: str
    ) -> tuple[FakeRequest, dict[str, Any], Behaviour]:
        """Read the request, draw its behaviour and wait out its latency."""
        fake, body = await self.read(request, endpoint)
        behaviour = self.profile(fake)
        if not await self.pause(behaviour.latency_s):
            behaviour = _CLOSING
        return fake, body, behaviour

    async def read(self, request: Request, endpoint: str) -> tuple[FakeRequest, dict[str, Any]]:
        """The request as a profile sees it, and its JSON body (logged)."""
        body: dict[str, Any] = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        prompt = _prompt(endpoint, body)
        fake = FakeRequest(
            provider=self.provider,
            endpoint=endpoint,
            model=str(body.get("model", "")),
            stream=bool(body.get("stream")),
            attempt=int(_float(headers, "x-stainless-retry-count", 0)),
            headers=headers,
            prompt=prompt,
        )
        self.log.append(fake)
        return fake, body

    def usage(self, fake: FakeRequest, b: Behaviour, text: str) -> wire.Usage:
        """Token counts of an answer (cache and reasoning shares from the behaviour)."""
        tokens_in = wire.count_tokens(fake.prompt) + 8
        return wire.Usage(
            input_tokens=tokens_in,
            output_tokens=wire.count_tokens(text) + b.reasoning_tokens,
            cached_tokens=int(tokens_in * min(1.0, b.cached_fraction)),
            cache_write_tokens=int(tokens_in * min(1.0, b.cache_write_fraction)),
            reasoning_tokens=b.reasoning_tokens,
        )


def _prompt(endpoint: str, body: Mapping[str, Any]) -> str:
    if endpoint == "embeddings":
        value = body.get("input")
        return "\n".join(value) if isinstance(value, list) else str(value or "")
    if endpoint == "responses":
        return wire.prompt_of_input(body.get("input"))
    system = body.get("system")
    prefix = system if isinstance(system, str) else ""
    return (prefix + "\n" + wire.prompt_of_messages(body.get("messages") or [])).strip()


_CLOSING = Behaviour(status=503)


def _error_response(b: Behaviour, payload: dict[str, Any]) -> Response:
    headers = {}
    if b.retry_after_s is not None:
        headers["retry-after"] = f"{b.retry_after_s:g}"
    return JSONResponse(payload, status_code=b.status, headers=headers)


def _sse(
    events: Iterable[dict[str, Any]], b: Behaviour, *, named: bool, done: bool
) -> StreamingResponse:
    """An SSE response; `named` adds `event:` lines (Responses API, Anthropic)."""

    async def body() -> AsyncIterator[bytes]:
        for i, event in enumerate(events):
            if i and b.chunk_delay_s:
                await asyncio.sleep(b.chunk_delay_s)
            head = f"event: {event['type']}\n" if named else ""
            yield f"{head}data: {json.dumps(event)}\n\n".encode()
        if done:
            yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


def _quiet(handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """A client that gave up mid-request (a guard's deadline) is normal here, not an error."""

    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except ClientDisconnect:
            return Response(status_code=499)

    return route


async def _chat(h: _Handler, request: Request) -> Response:
    fake, body, b = await h.begin(request, "chat")
    if b.status != 200:
        return _error_response(b, wire.openai_error(b.status))
    model = SNAPSHOTS.get(fake.model, fake.model)
    text = wire.answer_text(fake.prompt, _words(b, body.get("max_tokens")))
    usage, rid, now = h.usage(fake, b, text), f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if not fake.stream:
        calls = tool_requests(body, "openai", "call_")
        return JSONResponse(wire.chat_completion(rid, model, text, usage, now, calls))
    include = bool((body.get("stream_options") or {}).get("include_usage"))
    chunks = wire.chat_chunks(rid, model, text, usage, now, include_usage=include)
    return _sse(chunks, b, named=False, done=True)


async def _responses(h: _Handler, request: Request) -> Response:
    fake, body, b = await h.begin(request, "responses")
    if b.status != 200:
        return _error_response(b, wire.openai_error(b.status))
    model = SNAPSHOTS.get(fake.model, fake.model)
    text = wire.answer_text(fake.prompt, _words(b, body.get("max_output_tokens")))
    usage, rid, now = h.usage(fake, b, text), f"resp_{uuid.uuid4().hex[:24]}", time.time()
    if not fake.stream:
        return JSONResponse(
            wire.response_object(rid, model, text, usage, now, done=True, body=body)
        )
    events = wire.response_events(rid, model, text, usage, now, body)
    return _sse(events, b, named=True, done=False)


async def _embeddings(h: _Handler, request: Request) -> Response:
    fake, body, b = await h.begin(request, "embeddings")
    if b.status != 200:
        return _error_response(b, wire.openai_error(b.status))
    value = body.get("input")
    inputs = [str(v) for v in value] if isinstance(value, list) else [str(value or "")]
    encoding = str(body.get("encoding_format") or "float")
    return JSONResponse(wire.embeddings(fake.model, inputs, encoding))


async def _messages(h: _Handler, request: Request) -> Response:
    fake, body, b = await h.begin(request, "messages")
    if b.status != 200:
        return _error_response(b, wire.anthropic_error(b.status))
    model = SNAPSHOTS.get(fake.model, fake.model)
    text = wire.answer_text(fake.prompt, _words(b, body.get("max_tokens")))
    usage, rid = h.usage(fake, b, text), f"msg_{uuid.uuid4().hex[:24]}"
    if not fake.stream:
        calls = tool_requests(body, "anthropic", "toolu_")
        return JSONResponse(wire.message(rid, model, text, usage, calls))
    return _sse(wire.message_events(rid, model, text, usage), b, named=True, done=False)


def openai_app(
    profile: Profile = scripted,
    log: deque[FakeRequest] | None = None,
    closing: threading.Event | None = None,
) -> Starlette:
    """The ASGI app of the fake OpenAI API (mounted at `/v1`); `closing` cuts sleeps short."""
    h = _Handler("openai", profile, log, closing)
    return Starlette(
        routes=[
            Route("/v1/chat/completions", _quiet(functools.partial(_chat, h)), methods=["POST"]),
            Route("/v1/responses", _quiet(functools.partial(_responses, h)), methods=["POST"]),
            Route("/v1/embeddings", _quiet(functools.partial(_embeddings, h)), methods=["POST"]),
        ]
    )


def anthropic_app(
    profile: Profile = scripted,
    log: deque[FakeRequest] | None = None,
    closing: threading.Event | None = None,
) -> Starlette:
    """The ASGI app of the fake Anthropic API (`/v1/messages`); `closing` cuts sleeps short."""
    h = _Handler("anthropic", profile, log, closing)
    route = Route("/v1/messages", _quiet(functools.partial(_messages, h)), methods=["POST"])
    return Starlette(routes=[route])


def tool_requests(body: Mapping[str, Any], provider: str, prefix: str) -> list[wire.ToolUse]:
    """The tool calls a fake model makes: offered tools its task needs, unless it has results.

    The plan comes from the demo's rule-based planner over the last user message; a request
    whose last message carries tool results gets a text answer instead (and streams never call
    tools here).
    """
    tools = body.get("tools") or []
    offered = {
        (t.get("function") or {}).get("name") if provider == "openai" else t.get("name")
        for t in tools
        if isinstance(t, dict)
    }
    messages = body.get("messages") or []
    if not offered or not messages or _has_tool_results(messages[-1]):
        return []
    task = wire.prompt_of_messages([m for m in messages if m.get("role") == "user"][-1:])
    return [
        (f"{prefix}{uuid.uuid4().hex[:16]}", call.tool, {"argument": call.argument})
        for call in plan(task)
        if call.tool in offered
    ]


def _has_tool_results(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("role") == "tool":
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _words(b: Behaviour, max_tokens: Any) -> int:
    # An answer never runs past max_tokens (about 0.75 words a token).
    limit = int(max_tokens * 0.75) if isinstance(max_tokens, int) and max_tokens > 0 else None
    return max(1, min(b.answer_words, limit) if limit else b.answer_words)


class FakeServer:
    """A real HTTP server on 127.0.0.1 (an ephemeral port unless given) running in a thread.

    Used for the fake providers (which log their requests) and for the demo app itself.
    """

    def __init__(
        self,
        app: Starlette,
        requests: deque[FakeRequest] | None = None,
        port: int = 0,
        *,
        lifespan: Literal["on", "off"] = "off",
        closing: threading.Event | None = None,
    ) -> None:
        self.closing = closing or threading.Event()
        self.requests = requests if requests is not None else deque(maxlen=1000)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash, no `/v1`)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> FakeServer:
        """Start serving; returns once the app started up and the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (slow answers are cut short) and wait for the thread."""
        self.closing.set()
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def fake_openai(profile: Profile = scripted, port: int = 0) -> FakeServer:
    """A (not yet started) fake OpenAI server; clients use `base_url=server.url + '/v1'`."""
    log: deque[FakeRequest] = deque(maxlen=1000)
    closing = threading.Event()
    return FakeServer(openai_app(profile, log, closing), log, port, closing=closing)


def fake_anthropic(profile: Profile = scripted, port: int = 0) -> FakeServer:
    """A (not yet started) fake Anthropic server; clients use `base_url=server.url`."""
    log: deque[FakeRequest] = deque(maxlen=1000)
    closing = threading.Event()
    return FakeServer(anthropic_app(profile, log, closing), log, port, closing=closing)
