"""The demo's load: random users and sessions calling the demo service at a bounded rate.

Requests start on a fixed schedule (`rate` a second); at most `max_in_flight` run at once and
a tick that finds them all busy is skipped and counted, so a slow service never piles up work.
Some answers get user feedback (thumbs up or down) through `watchkeeper.feedback`.
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
from watchkeeper.demo._knowledge import QUESTIONS, TASKS
from watchkeeper.demo._service import RAG_MODELS


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


async def run_load(
    base_url: str,
    *,
    rate: float,
    stop: threading.Event,
    duration: float = 0.0,
    seed: int | None = None,
    max_in_flight: int = 64,
    feedback_share: float = 0.2,
) -> LoadStats:
    """Send requests until `stop` is set or `duration` seconds passed (0: until stopped)."""
    rng, stats = random.Random(seed), LoadStats()
    users = Users(rng)
    interval = 1.0 / max(rate, 0.01)
    end = time.monotonic() + duration if duration > 0 else float("inf")
    running: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        tick = time.monotonic()
        while not stop.is_set() and time.monotonic() < end:
            if len(running) >= max_in_flight:
                stats.skipped += 1
            else:
                task = asyncio.create_task(_one(client, rng, users, stats, feedback_share))
                running.add(task)
                task.add_done_callback(running.discard)
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        if running:
            await asyncio.wait(running, timeout=30.0)
    return stats


async def _one(
    client: httpx.AsyncClient,
    rng: random.Random,
    users: Users,
    stats: LoadStats,
    feedback_share: float,
) -> None:
    user, session = users.pick()
    path, body = next_request(rng)
    stats.sent += 1
    stats.paths[path] += 1
    headers = {"x-user-id": user, "x-session-id": session}
    try:
        response = await client.post(path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        stats.statuses[type(exc).__name__] += 1
        return
    stats.statuses[str(response.status_code)] += 1
    if response.status_code == 200 and rng.random() < feedback_share:
        trace_id = response.json().get("trace_id")
        if trace_id:
            good = rng.random() < 0.8
            label = "thumbs_up" if good else "thumbs_down"
            if watchkeeper.feedback(trace_id, 1.0 if good else 0.0, label, user_id=user):
                stats.feedback += 1
