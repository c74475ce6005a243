"""Evaluation scores of the demo's answers, posted to the scores API as an LLM judge would.

A judge model is out of reach of a demo on fake providers, so `judge` stands in for one:
`relevance` is the retrieval's own similarity of the question to its best document (a real
measure of this run); `hallucination` (1 = every claim is in the context, 0 = made up) is drawn
around a level that falls with that relevance, as judges find answers on weak context made up
more often. Every score names the document and quotes the answer, so no two look alike.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

#: Cosine similarity at which the demo's hash embeddings count a document fully relevant
#: (the best matches of its questions reach 0.5-0.75).
FULL_MATCH = 0.6


@dataclass(frozen=True)
class Score:
    """One evaluation of an answer."""

    name: str
    value: float
    comment: str


def _quote(text: str, words: int = 8) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


def judge(
    question: str, answer: str, sources: Sequence[Mapping[str, Any]], rng: random.Random
) -> list[Score]:
    """Relevance of the retrieved context and groundedness of the answer in it."""
    if not sources:
        return []
    best = sources[0]
    doc, similarity = str(best.get("id", "?")), float(best.get("score", 0.0))
    relevance = round(min(1.0, max(0.0, similarity / FULL_MATCH)), 2)
    grounded = round(min(1.0, max(0.0, rng.gauss(0.55 + 0.4 * relevance, 0.12))), 2)
    if relevance < 0.5:
        why = f"best match {doc} ({similarity:.2f}) barely covers “{_quote(question, 16)}”"
    else:
        why = f"{doc} ({similarity:.2f}) answers “{_quote(question, 16)}”"
    if grounded < 0.5:
        claim = f"claims not in {doc}: “{_quote(answer)}”"
    else:
        claim = f"supported by {doc}: “{_quote(answer, 5)}”"
    return [Score("relevance", relevance, why), Score("hallucination", grounded, claim)]


class Evaluator:
    """Judges a share of the demo's RAG answers and posts the scores (source `eval`)."""

    def __init__(
        self,
        server_url: str,
        api_key: str | None = None,
        *,
        share: float = 0.35,
        seed: int | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = server_url.rstrip("/") + "/api/v1/scores"
        self.client = httpx.AsyncClient(headers=headers, timeout=10.0)
        self.share = share
        self.rng = random.Random(seed)
        self.posted = 0
        self.failed = 0

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def evaluate(self, trace_id: str, question: str, answer: Mapping[str, Any]) -> None:
        """Judge one answer of POST /rag (some of them; never a cached one) and post it."""
        if answer.get("cached") or self.rng.random() >= self.share:
            return
        sources = answer.get("sources") or []
        for score in judge(question, str(answer.get("answer", "")), sources, self.rng):
            body = {"trace_id": trace_id, "name": score.name, "value": score.value,
                    "comment": score.comment, "source": "eval"}  # fmt: skip
            try:
                response = await self.client.post(self.url, json=body)
                response.raise_for_status()
                self.posted += 1
            except httpx.HTTPError:
                self.failed += 1  # a demo carries on; the count is printed at the end
