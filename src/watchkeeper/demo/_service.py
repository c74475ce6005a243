"""The demo AI service: RAG behind a guard with fallbacks, and a tool-calling agent.

Built only on the public SDK (`observe`, `guard`, `context`, `count_cache`, the middleware and
the client wrappers), the way an app would use it. The LLM clients are passed in.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any

import anthropic
import openai

import watchkeeper
from watchkeeper import GuardEvent
from watchkeeper.demo._knowledge import DOCUMENTS, Hit, TTLCache, VectorStore
from watchkeeper.demo._tools import ToolCall, ToolError, plan, run_tool
from watchkeeper.model import conventions as c

#: RAG models and how often the load picks each (different prices, so cost dashboards differ).
RAG_MODELS: dict[str, float] = {"gpt-4o-mini": 0.5, "gpt-4.1": 0.3, "claude-sonnet-4": 0.2}
FALLBACK_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
PLANNER_MODEL = "claude-3-5-haiku"
WRITER_MODEL = "gpt-4.1"
AGENT_TOOLS: Any = [
    {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": {"argument": {"type": "string"}},
            "required": ["argument"],
        },
    }
    for name, description in (
        ("search", "Search the product documentation."),
        ("calculator", "Evaluate an arithmetic expression."),
        ("weather", "Current weather in a city."),
    )
]
CANNED_ANSWER = "Sorry, I cannot answer that right now; a human will follow up."


@dataclass(frozen=True)
class DemoOptions:
    """Knobs of the demo service (a test shrinks the deadline to see timeouts quickly)."""

    deadline_s: float = 6.0  # the guard's, so fallbacks still answer within the request's 8 s
    retries: int = 1
    fallback_timeout_s: float = 2.0  # the cheaper model gets less time
    request_deadline_s: float = 10.0  # the middleware answers 504 past it
    tool_failure_rate: float = 0.05
    tool_latency_s: tuple[float, float] = (0.01, 0.15)
    cache_ttl_s: float = 60.0
    stream_share: float = 0.3  # share of OpenAI answers streamed
    responses_share: float = 0.15  # share of OpenAI answers through the Responses API


log = logging.getLogger("watchkeeper.demo")


def _log_fallback(event: GuardEvent) -> None:
    """Say in the app's log (JSON, with the trace id) which fallback answered and why."""
    reason = type(event.error).__name__ if event.error is not None else "breaker open"
    log.warning(
        "%s answered by %s after %d attempt(s) in %.2fs (%s)",
        event.name, event.fallback, event.attempts, event.elapsed_s, reason,
    )  # fmt: skip


class DemoService:
    """The service's logic; the HTTP layer is in `_app`."""

    def __init__(
        self,
        oai: openai.AsyncOpenAI,
        ant: anthropic.AsyncAnthropic,
        options: DemoOptions = DemoOptions(),
        rng: random.Random | None = None,
    ) -> None:
        self.oai = watchkeeper.instrument_openai(oai)
        self.ant = watchkeeper.instrument_anthropic(ant)
        self.fallback_oai = self.oai.with_options(timeout=options.fallback_timeout_s, max_retries=0)
        self.options = options
        self.rng = rng or random.Random()
        self.answers: TTLCache[str] = TTLCache(options.cache_ttl_s)
        self.last_good: TTLCache[str] = TTLCache(ttl_s=3600.0)  # the stale-answer fallback
        self.store = VectorStore()
        # Each service owns its breakers (not the process-wide ones by guard name), so two
        # services in one process (tests) never trip each other's.
        self.answer = watchkeeper.guard(
            "rag.answer",
            deadline=options.deadline_s,
            retries=options.retries,
            fallbacks=[self._cheaper_answer, self._stale_answer, CANNED_ANSWER],
            breaker=watchkeeper.Breaker(failure_threshold=8, reset_timeout=10.0),
            on_fallback=_log_fallback,
        )(self._generate)
        # Planning by the model is optional: past its deadline the rule-based plan stands in.
        self.plan = watchkeeper.guard(
            "agent.plan",
            deadline=options.deadline_s,
            retries=0,
            fallbacks=[plan],
            breaker=watchkeeper.Breaker(failure_threshold=8, reset_timeout=10.0),
            on_fallback=_log_fallback,
        )(self._plan)
        self.write_up = watchkeeper.guard(
            "agent.answer",
            deadline=options.deadline_s,
            retries=options.retries,
            fallbacks=[self._cheaper_answer, CANNED_ANSWER],
            breaker=watchkeeper.Breaker(failure_threshold=8, reset_timeout=10.0),
            on_fallback=_log_fallback,
        )(self._generate)

    async def load_documents(self) -> None:
        """Embed the documents into the vector store (one batched embedding call)."""
        async with watchkeeper.observe("index documents", kind="workflow"):
            texts = [text for _, text in DOCUMENTS]
            result = await self.oai.embeddings.create(model=EMBEDDING_MODEL, input=texts)
            for (doc_id, text), item in zip(DOCUMENTS, result.data, strict=True):
                self.store.add(doc_id, text, item.embedding)

    # --- RAG ------------------------------------------------------------------------------------
    async def rag(self, question: str, model: str) -> dict[str, Any]:
        """Answer from the documents: cache → retrieval → guarded LLM call."""
        async with watchkeeper.observe("rag", kind="workflow") as span:
            span.set_input({"question": question, "model": model})
            key = f"{model}:{question.strip().lower()}"
            cached = self.answers.get(key)
            watchkeeper.count_cache("rag_answers", hit=cached is not None)
            span.set({"watchkeeper.metadata.cache_hit": cached is not None})
            if cached is not None:
                span.set_output(cached)
                log.info("rag answered from the cache", extra={"model": model, "cache_hit": True})
                return {"answer": cached, "cached": True, "trace_id": span.trace_id}
            hits = await self.retrieve(question)
            answer = await self.answer(question, [h.text for h in hits], model)
            if answer != CANNED_ANSWER:
                self.answers.set(key, answer)
                self.last_good.set(question.strip().lower(), answer)
            span.set_output(answer)
            # The sources let an evaluator judge the answer against what it was given.
            sources = [{"id": h.doc_id, "score": round(h.score, 3)} for h in hits]
            log.info(
                "rag answered from %d document(s)", len(hits),
                extra={"model": model, "cache_hit": False, "sources": [h.doc_id for h in hits]},
            )  # fmt: skip
            return {
                "answer": answer,
                "cached": False,
                "trace_id": span.trace_id,
                "sources": sources,
            }

    async def retrieve(self, question: str, k: int = 3) -> list[Hit]:
        """Embed the question and take the `k` nearest documents (a retrieval span)."""
        async with watchkeeper.observe("retrieve", kind="retrieval") as span:
            span.set({c.GEN_AI_DATA_SOURCE_ID: "demo-docs"})
            span.set_input(question)
            result = await self.oai.embeddings.create(model=EMBEDDING_MODEL, input=question)
            hits = self.store.search(result.data[0].embedding, k)
            span.set_output([{"id": h.doc_id, "score": round(h.score, 3)} for h in hits])
            return hits

    async def _generate(self, question: str, context: list[str], model: str) -> str:
        """One LLM answer with the retrieved context, through the model's provider."""
        system = "Answer from the context only.\n" + "\n".join(f"- {t}" for t in context)
        return await self._ask(self.oai, model, system, question)

    async def _cheaper_answer(self, question: str, context: list[str], model: str) -> str:
        """Fallback: the cheaper model, with less time and no client retries."""
        system = "Answer briefly from the context.\n" + "\n".join(context[:1])
        return await self._ask(self.fallback_oai, FALLBACK_MODEL, system, question)

    async def _stale_answer(self, question: str, context: list[str], model: str) -> str:
        """Fallback: the last good answer to this question, if one is cached."""
        answer = self.last_good.get(question.strip().lower())
        watchkeeper.count_cache("rag_stale_answers", hit=answer is not None)
        if answer is None:
            raise LookupError("no earlier answer to fall back on")
        return answer

    async def _ask(self, oai: openai.AsyncOpenAI, model: str, system: str, prompt: str) -> str:
        """Ask `model`: Anthropic for Claude; OpenAI chat (sometimes streamed) or Responses."""
        if model.startswith("claude"):
            message = await self.ant.messages.create(
                model=model,
                max_tokens=400,
                system=system,
                messages=[{"role": "user", "content": prompt}],
            )
            return "".join(getattr(b, "text", "") for b in message.content)
        roll = self.rng.random()
        messages: Any = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        if roll < self.options.stream_share:
            stream = await oai.chat.completions.create(
                model=model, messages=messages, stream=True, stream_options={"include_usage": True}
            )
            parts = [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
            return "".join(parts)
        if roll < self.options.stream_share + self.options.responses_share:
            response = await oai.responses.create(
                model=model, instructions=system, input=prompt, max_output_tokens=400
            )
            return response.output_text
        completion = await oai.chat.completions.create(
            model=model, messages=messages, temperature=0.2, max_tokens=400
        )
        return completion.choices[0].message.content or ""

    # --- agent ----------------------------------------------------------------------------------
    async def agent(self, task: str) -> dict[str, Any]:
        """Plan with a small model, run the tools, write the answer with a large one."""
        async with watchkeeper.observe("support-agent", kind="agent") as span:
            span.set_input(task)
            calls: list[ToolCall] = await self.plan(task)
            results = [await self._tool(call) for call in calls]
            summary = "\n".join(f"{r['tool']}: {r.get('result', r.get('error'))}" for r in results)
            answer = await self.write_up(task, [summary], WRITER_MODEL)
            span.set_output(answer)
            failed = [r["tool"] for r in results if "error" in r]
            log.info(
                "agent ran %d tool(s), %d failed", len(results), len(failed),
                extra={"tools": [r["tool"] for r in results], "failed_tools": failed},
            )  # fmt: skip
            return {"answer": answer, "tools": results, "trace_id": span.trace_id}

    async def _plan(self, task: str) -> list[ToolCall]:
        """Ask the small model which tools to call (Anthropic tool use)."""
        message = await self.ant.messages.create(
            model=PLANNER_MODEL,
            max_tokens=300,
            system="Call the tools the task needs.",
            tools=AGENT_TOOLS,
            messages=[{"role": "user", "content": task}],
        )
        return [
            ToolCall(block.name, str(block.input.get("argument", "")))
            for block in message.content
            if block.type == "tool_use" and isinstance(block.input, dict)
        ]

    async def _tool(self, call: ToolCall) -> dict[str, Any]:
        """Run one tool as a tool span; a failing tool is reported, the agent carries on."""
        try:
            async with watchkeeper.observe(call.tool, kind="tool") as span:
                span.set({c.GEN_AI_TOOL_CALL_ID: f"call_{uuid.uuid4().hex[:12]}"})
                span.set_input(call.argument)
                await asyncio.sleep(self.rng.uniform(*self.options.tool_latency_s))
                if call.tool == "weather" and self.rng.random() < self.options.tool_failure_rate:
                    raise ToolError("weather service unavailable")
                result = run_tool(call)
                span.set_output(result)
                return {"tool": call.tool, "result": result}
        except ToolError as exc:
            log.warning("tool %s failed; the agent carries on", call.tool, exc_info=exc)
            return {"tool": call.tool, "error": str(exc)}
