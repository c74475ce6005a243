"""The demo service's HTTP layer: a FastAPI app with the SDK's middleware and /metrics."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anthropic
import openai
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, Field

import watchkeeper
from watchkeeper.demo._service import RAG_MODELS, DemoOptions, DemoService
from watchkeeper.model import conventions as c


class RagRequest(BaseModel):
    """Body of POST /rag."""

    question: str = Field(min_length=1, max_length=2000)
    model: str = "gpt-4o-mini"


class AgentRequest(BaseModel):
    """Body of POST /agent."""

    task: str = Field(min_length=1, max_length=2000)


@dataclass(frozen=True)
class Upstreams:
    """Where the (fake) providers listen."""

    openai_url: str  # base URL including /v1
    anthropic_url: str


def tag_request(user_id: str | None, session_id: str | None, feature: str) -> None:
    """Put user, session and feature on the request's server span too.

    `watchkeeper.context` tags spans started beneath it; the middleware's server span started
    before the handler knew who is calling, and per-user request views read that span.
    """
    span = trace.get_current_span()
    for key, value in ((c.USER_ID, user_id), (c.SESSION_ID, session_id), (c.WK_FEATURE, feature)):
        if value:
            span.set_attribute(key, value)


def _lifespan(
    upstreams: Upstreams, options: DemoOptions, seed: int | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up: clients made in the app's own event loop, documents indexed; then close."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        oai = openai.AsyncOpenAI(
            base_url=upstreams.openai_url, api_key="demo", max_retries=1, timeout=20.0
        )
        ant = anthropic.AsyncAnthropic(
            base_url=upstreams.anthropic_url, api_key="demo", max_retries=1, timeout=20.0
        )
        service = DemoService(oai, ant, options, random.Random(seed))
        await service.load_documents()
        app.state.service = service
        try:
            yield
        finally:
            await oai.close()
            await ant.close()

    return lifespan


def create_demo_app(
    upstreams: Upstreams, options: DemoOptions = DemoOptions(), seed: int | None = None
) -> FastAPI:
    """The demo app; its LLM clients are made in the app's own event loop at start-up."""

    lifespan = _lifespan(upstreams, options, seed)
    app = FastAPI(title="Watchkeeper demo AI service", lifespan=lifespan)
    # The middleware also serves /metrics (the SDK's registry) and answers 504 past the deadline.
    app.add_middleware(watchkeeper.WatchkeeperMiddleware, deadline=options.request_deadline_s)

    @app.post("/rag")
    async def rag(
        body: RagRequest,
        request: Request,
        x_user_id: str | None = Header(default=None),
        x_session_id: str | None = Header(default=None),
    ) -> dict[str, object]:
        """Answer a question from the documents."""
        model = body.model if body.model in RAG_MODELS else "gpt-4o-mini"
        tag_request(x_user_id, x_session_id, "rag")
        with watchkeeper.context(user_id=x_user_id, session_id=x_session_id, feature="rag"):
            return await request.app.state.service.rag(body.question, model)  # type: ignore[no-any-return]

    @app.post("/agent")
    async def agent(
        body: AgentRequest,
        request: Request,
        x_user_id: str | None = Header(default=None),
        x_session_id: str | None = Header(default=None),
    ) -> dict[str, object]:
        """Run the support agent on a task."""
        tag_request(x_user_id, x_session_id, "agent")
        with watchkeeper.context(user_id=x_user_id, session_id=x_session_id, feature="agent"):
            return await request.app.state.service.agent(body.task)  # type: ignore[no-any-return]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.exception_handler(openai.APIError)
    @app.exception_handler(anthropic.APIError)
    async def upstream_failed(request: Request, exc: Exception) -> JSONResponse:
        """A provider call nothing could stand in for (e.g. retrieval): 502, not a crash."""
        return JSONResponse({"error": f"upstream model provider failed: {exc}"}, status_code=502)

    return app
