"""The demo's scenario: a provider incident on a schedule, and the server config that sees it.

Within five minutes a demo shows every feature: OpenAI starts failing 90 s in and recovers at
210 s, so the demo's one-minute failed-request rule fires and then resolves, and its
availability and latency SLOs burn budget. `WATCHKEEPER_DEMO_TIME_SCALE` compresses the
schedule and every window of that config together (0.25: a run of about 90 s, for a test).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from watchkeeper.demo.fake_providers import Behaviour, FakeRequest, Profile
from watchkeeper.errors import ConfigError

SCALE_ENV = "WATCHKEEPER_DEMO_TIME_SCALE"
SERVICE = "demo-ai-service"


@dataclass(frozen=True)
class Schedule:
    """When the incident runs, in seconds since the load started, times `scale`."""

    scale: float = 1.0
    incident_start_s: float = 90.0
    incident_end_s: float = 210.0

    def at(self, seconds: float) -> float:
        """A duration of the unscaled scenario, scaled."""
        return seconds * self.scale

    def incident(self, elapsed_s: float) -> bool:
        """Whether the provider incident runs `elapsed_s` after the start."""
        return self.at(self.incident_start_s) <= elapsed_s < self.at(self.incident_end_s)


def schedule_from_env(env: Mapping[str, str] | None = None) -> Schedule:
    """The schedule, compressed by `WATCHKEEPER_DEMO_TIME_SCALE` (0.05 to 10) if set;
    ConfigError for another value."""
    raw = (os.environ if env is None else env).get(SCALE_ENV, "").strip()
    if not raw:
        return Schedule()
    try:
        scale = float(raw)
    except ValueError:
        scale = float("nan")
    if not 0.05 <= scale <= 10:
        raise ConfigError(f"{SCALE_ENV}={raw!r}: give a number from 0.05 to 10 (1: real time)")
    return Schedule(scale=scale)


@dataclass
class IncidentProfile:
    """OpenAI fails most calls (503) while the schedule's incident runs; else `base` decides."""

    base: Profile
    schedule: Schedule
    error_rate: float = 0.7
    seed: int | None = None
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._rng = random.Random(self.seed)

    def restart(self) -> None:
        """Count the schedule from now (when the load begins)."""
        self.started = self.clock()

    def __call__(self, request: FakeRequest) -> Behaviour:
        """The base behaviour, or a fast 503 from OpenAI during the incident."""
        if request.provider == "openai" and self.schedule.incident(self.clock() - self.started):
            with self._lock:
                failing = self._rng.random() < self.error_rate
            if failing:
                return Behaviour(status=503, latency_s=0.05)
        return self.base(request)


def server_config(
    schedule: Schedule = Schedule(), scrape: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The server's config for the demo: two SLOs and a fast failed-request rule (`alerting:`),
    and the `scrape` jobs (`metrics.scrape`) of what the demo runs."""
    at = schedule.at
    requests = {"scope": "requests", "service": SERVICE}
    return {
        "alerting": {
            "interval": max(1.0, at(5.0)),
            "slos": [
                {"id": "demo-availability", "name": "Demo answers (99%)", "sli": "availability",
                 "objective": "99%", "period": "7d", "filters": requests,
                 "description": "Requests answered, by the model or a fallback."},
                {"id": "demo-latency", "name": "Demo under 5 s (95%)", "sli": "latency",
                 "latency_threshold_ms": 5000, "objective": "95%", "period": "7d",
                 "filters": requests},
            ],
            "rules": [
                {"id": "demo-failed-requests", "name": "Failed requests (1-minute window)",
                 "kind": "outcome_ratio", "outcomes": ["error", "timeout", "rejected"],
                 "filters": requests, "group_by": "service", "window": at(60.0),
                 "threshold": "10%", "for": at(20.0), "min_count": 10, "severity": "critical",
                 "description": "Open the failed traces: one provider's errors on every "
                 "model of it is an outage; the demo injects one 90 s in for two minutes.",
                 "annotations": {"summary": "{service}: {value} of requests failed over {window}"}},
            ],
        },
        **({"metrics": {"scrape": scrape}} if scrape else {}),
    }  # fmt: skip


def write_server_config(
    path: Path, schedule: Schedule = Schedule(), scrape: list[dict[str, Any]] | None = None
) -> Path:
    """Write `server_config(schedule, scrape)` as YAML to `path` (its directory made); return
    it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(server_config(schedule, scrape), sort_keys=False))
    return path
