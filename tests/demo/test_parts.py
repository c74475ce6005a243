"""The demo's pure parts: cache, vector store, tools, planner and the load's request mix."""

from __future__ import annotations

import random

import pytest

from watchkeeper.demo._knowledge import DOCUMENTS, TTLCache, VectorStore
from watchkeeper.demo._load import Users, next_request
from watchkeeper.demo._tools import ToolCall, ToolError, calculator, plan, search, weather
from watchkeeper.demo._wire import embed


def test_ttl_cache_expires_and_evicts_least_recent() -> None:
    now = [0.0]
    cache: TTLCache[str] = TTLCache(ttl_s=10, max_items=2, clock=lambda: now[0])
    cache.set("a", "1")
    cache.set("b", "2")
    assert cache.get("a") == "1"  # a is now the most recent
    cache.set("c", "3")
    assert cache.get("b") is None and cache.get("a") == "1"
    now[0] = 10.0
    assert cache.get("a") is None and len(cache) == 1


def test_vector_store_finds_the_matching_document() -> None:
    store = VectorStore()
    for doc_id, text in DOCUMENTS:
        store.add(doc_id, text, embed(text))
    [best, *_] = store.search(embed("How can I reset my password?"))
    assert best.doc_id == "faq-password"


@pytest.mark.parametrize(
    ("expression", "value"), [("18 * 3.5", 63.0), ("2 ** 10 + 24", 1048.0), ("1200 / 16", 75.0)]
)
def test_calculator(expression: str, value: float) -> None:
    assert calculator(expression) == value


@pytest.mark.parametrize("bad", ["__import__('os')", "1 / 0", "2 ** 1000", "x + 1", "1 +"])
def test_calculator_refuses(bad: str) -> None:
    with pytest.raises(ToolError):
        calculator(bad)


def test_tools_and_planner() -> None:
    assert weather("Paris") == weather("Paris") and weather("Paris")["city"] == "Paris"
    with pytest.raises(ToolError):
        weather("Atlantis")
    assert search("how are webhooks signed")[0] == "guide-webhooks"
    assert plan("What is the weather in Paris and what is 18 * 3.5?") == [
        ToolCall("weather", "Paris"), ToolCall("calculator", "18 * 3.5"),
    ]  # fmt: skip


def test_users_keep_a_session_for_a_few_requests() -> None:
    users = Users(random.Random(3), count=2)
    picks = [users.pick() for _ in range(40)]
    sessions_per_user: dict[str, set[str]] = {}
    for user, session in picks:
        sessions_per_user.setdefault(user, set()).add(session)
    assert set(sessions_per_user) == {"user-000", "user-001"}
    assert all(1 < len(s) < 20 for s in sessions_per_user.values())  # rotated, but reused


def test_request_mix() -> None:
    rng = random.Random(9)
    paths = [next_request(rng)[0] for _ in range(1000)]
    assert 0.6 < paths.count("/rag") / 1000 < 0.8
