"""The demo's load: random users and sessions calling the demo service at a bounded rate.

Requests start on a fixed schedule (`rate` a second); at most `max_in_flight` run at once and
a tick that finds them all busy is skipped and counted, so a slow service never piles up work.
Some answers get user feedback (thumbs up or down, often with a comment) through
`watchkeeper.feedback`, and an `Evaluator` may judge some RAG answers.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

import watchkeeper
from watchkeeper.demo._evals import Evaluator
from watchkeeper.demo._knowledge import QUESTIONS, TASKS
from watchkeeper.demo._service import CANNED_ANSWER, RAG_MODELS


@dataclass
class LoadStats:
    """What the load loop did."""

    sent: int = 0
    skipped: int = 0  # ticks dropped because `max_in_flight` requests were running
    statuses: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    feedback: int = 0


@dataclass
class Users:
    """A pool of users, each in a session that ends after a few requests."""

    rng: random.Random
    count: int = 40
    sessions: dict[str, tuple[str, int]] = field(default_factory=dict)

    def pick(self) -> tuple[str, str]:
        """A random user and their current session id."""
        user = f"user-{self.rng.randrange(self.count):03d}"
        session, left = self.sessions.get(user, ("", 0))
        if left <= 0:
            session, left = f"sess-{self.rng.getrandbits(48):012x}", self.rng.randint(2, 8)
        self.sessions[user] = (session, left - 1)
        return user, session


def next_request(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of the next request (70% RAG, 30% agent)."""
    if rng.random() < 0.7:
        model = rng.choices(list(RAG_MODELS), weights=list(RAG_MODELS.values()))[0]
        question = rng.choice(QUESTIONS)
        if rng.random() < 0.6:
            # Most questions carry the asker's details, so only some repeat (cache hits).
            question += f" (order {rng.randrange(100_000):05d})"
        return "/rag", {"question": question, "model": model}
    return "/agent", {"task": rng.choice(TASKS)}


@dataclass
class _Run:
    """What every request of one load run shares."""

    client: httpx.AsyncClient
    rng: random.Random
    users: Users
    stats: LoadStats
    feedback_share: float
    evaluator: Evaluator | None


async def run_load(
    base_url: str,
    *,
    rate: float,
    stop: threading.Event,
    duration: float = 0.0,
    seed: int | None = None,
    max_in_flight: int = 64,
    feedback_share: float = 0.2,
    evaluator: Evaluator | None = None,
) -> LoadStats:
    """Send requests until `stop` is set or `duration` seconds passed (0: until stopped).

    Some answers get user feedback; `evaluator` judges some RAG answers too.
    """
    rng, stats = random.Random(seed), LoadStats()
    interval = 1.0 / max(rate, 0.01)
    end = time.monotonic() + duration if duration > 0 else float("inf")
    running: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        run = _Run(client, rng, Users(rng), stats, feedback_share, evaluator)
        tick = time.monotonic()
        while not stop.is_set() and time.monotonic() < end:
            if len(running) >= max_in_flight:
                stats.skipped += 1
            else:
                task = asyncio.create_task(_one(run))
                running.add(task)
                task.add_done_callback(running.discard)
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        if running:
            await asyncio.wait(running, timeout=30.0)
    return stats


#: Why a user gives a thumbs down to an answer that was neither slow nor canned.
COMPLAINTS: tuple[str, ...] = (
    "didn't answer the question",
    "too vague to act on",
    "mentions a setting that doesn't exist",
    "cited the wrong document",
    "contradicts the docs",
    "answer was cut off",
)


def feedback_for(
    rng: random.Random, question: str, answer: str, elapsed_s: float
) -> tuple[bool, str | None]:
    """Whether a user liked an answer, and what they wrote: slow and canned answers get
    thumbs down more often, and every comment names what was asked."""
    asked = question if len(question) <= 48 else question[:47] + "…"
    if answer == CANNED_ANSWER and rng.random() < 0.8:
        return False, f"got “cannot answer right now” for: {asked}"
    if elapsed_s > 5.0 and rng.random() < 0.6:
        return False, f"waited {elapsed_s:.1f} s for: {asked}"
    if rng.random() < 0.15:
        return False, f"{rng.choice(COMPLAINTS)}: {asked}"
    return True, (f"helpful: {asked}" if rng.random() < 0.2 else None)


async def _one(run: _Run) -> None:
    rng, stats = run.rng, run.stats
    user, session = run.users.pick()
    path, body = next_request(rng)
    stats.sent += 1
    stats.paths[path] += 1
    headers = {"x-user-id": user, "x-session-id": session}
    began = time.monotonic()
    try:
        response = await run.client.post(path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        stats.statuses[type(exc).__name__] += 1
        return
    stats.statuses[str(response.status_code)] += 1
    if response.status_code != 200:
        return
    answer = response.json()
    trace_id = answer.get("trace_id")
    if not trace_id:
        return
    question = str(body.get("question") or body.get("task") or "")
    if run.evaluator is not None and path == "/rag":
        await run.evaluator.evaluate(trace_id, question, answer)
    if rng.random() < run.feedback_share:
        elapsed = time.monotonic() - began
        good, comment = feedback_for(rng, question, str(answer.get("answer", "")), elapsed)
        label = "thumbs_up" if good else "thumbs_down"
        if watchkeeper.feedback(
            trace_id, 1.0 if good else 0.0, label, comment=comment, user_id=user
        ):
            stats.feedback += 1
