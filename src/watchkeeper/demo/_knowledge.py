"""The demo service's data: a small document set, an in-memory vector store and a TTL cache."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DOCUMENTS: tuple[tuple[str, str], ...] = (
    ("runbook-deploy", "To roll back a deployment run the deploy tool with the previous tag."),
    ("runbook-latency", "High latency usually comes from the model provider; check p95 per model."),
    ("faq-billing", "Invoices are sent on the first day of the month to the billing contact."),
    ("faq-password", "Reset a password from the login page; the link expires after one hour."),
    ("faq-limits", "The free plan allows 100 requests a minute; paid plans allow 5000."),
    ("policy-refund", "Refunds are possible within 30 days of purchase for annual plans."),
    ("policy-data", "Customer data is stored in the EU region and deleted 90 days after churn."),
    ("guide-api-key", "Create an API key in settings; keys can be revoked at any time."),
    ("guide-webhooks", "Webhooks are signed with HMAC SHA-256; verify the signature header."),
    ("guide-export", "Export traces as CSV or JSON from the traces page, up to 10000 rows."),
    ("incident-2024-03", "The March outage was caused by an expired TLS certificate."),
    ("product-agents", "Agents call tools such as search, calculator and weather in a loop."),
)

QUESTIONS: tuple[str, ...] = (
    "How do I roll back a deployment?",
    "Why is latency high on the chat endpoint?",
    "When are invoices sent?",
    "How can I reset my password?",
    "What are the rate limits of the free plan?",
    "Can I get a refund for an annual plan?",
    "Where is customer data stored?",
    "How do I create an API key?",
    "How are webhooks signed?",
    "How do I export traces?",
    "What caused the March outage?",
    "What tools can agents call?",
)

TASKS: tuple[str, ...] = (
    "What is the weather in Paris and what is 18 * 3.5?",
    "Search the docs for webhook signing and compute 1200 / 16.",
    "Plan a trip to Berlin: check the weather and search the refund policy.",
    "What is 2 ** 10 + 24, and the weather in Tokyo?",
    "Find the rate limits and compute how many requests fit in 15 minutes at 100 a minute.",
    "Check the weather in Lisbon and Oslo.",
)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


@dataclass(frozen=True)
class Hit:
    """One retrieved document and its similarity to the query."""

    doc_id: str
    text: str
    score: float


class VectorStore:
    """A tiny in-memory vector store: exact cosine search over every vector."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, list[float]]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, doc_id: str, text: str, vector: Sequence[float]) -> None:
        """Store one document with its embedding."""
        self._rows.append((doc_id, text, list(vector)))

    def search(self, vector: Sequence[float], k: int = 3) -> list[Hit]:
        """The `k` documents closest to `vector`, best first."""
        hits = [Hit(doc_id, text, cosine(vector, v)) for doc_id, text, v in self._rows]
        return sorted(hits, key=lambda h: h.score, reverse=True)[:k]


class TTLCache(Generic[T]):
    """A Redis-style cache in process: entries expire after `ttl_s`; size is bounded (LRU)."""

    def __init__(
        self,
        ttl_s: float = 300.0,
        max_items: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_items
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        """The live value under `key`, or None (expired entries are dropped)."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: T, ttl_s: float | None = None) -> None:
        """Store `value` under `key` for `ttl_s` (the cache default when None)."""
        with self._lock:
            self._items[key] = (self._clock() + (ttl_s or self._ttl_s), value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
