"""The demo shows every feature within minutes: `watchkeeper demo` on a compressed schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server._process import free_port

from watchkeeper.alerting._config import load_alerting_config
from watchkeeper.demo._evals import judge
from watchkeeper.demo._load import feedback_for
from watchkeeper.demo._scenario import SCALE_ENV, Schedule, schedule_from_env, server_config
from watchkeeper.errors import ConfigError

SCALE = 0.25  # the incident from 22.5 s to 52.5 s; the rule's window 15 s, its `for` 5 s
RULE = "demo-failed-requests"


@pytest.mark.parametrize(
    ("elapsed_s", "scale", "incident"),
    [(0, 1, False), (89.9, 1, False), (90, 1, True), (209.9, 1, True), (210, 1, False),
     (22.5, 0.25, True), (52.4, 0.25, True), (52.5, 0.25, False)],
)  # fmt: skip
def test_the_incident_runs_on_the_schedule(elapsed_s: float, scale: float, incident: bool) -> None:
    assert Schedule(scale=scale).incident(elapsed_s) is incident


def test_the_server_config_scales_with_the_schedule() -> None:
    cfg = load_alerting_config(server_config(Schedule(scale=SCALE))["alerting"])
    rule = next(r for r in cfg.rules if r.id == RULE)
    assert (rule.window, rule.for_, cfg.interval) == (15.0, 5.0, 1.25)
    assert {(s.id, s.sli) for s in cfg.slos} == {
        ("demo-availability", "availability"), ("demo-latency", "latency"),
    }  # fmt: skip
    assert schedule_from_env({}) == Schedule()
    assert schedule_from_env({SCALE_ENV: "0.25"}).scale == 0.25
    for bad in ("0", "fast", "100"):
        with pytest.raises(ConfigError, match=SCALE_ENV):
            schedule_from_env({SCALE_ENV: bad})


def test_judge_and_feedback_name_what_they_judged() -> None:
    import random

    rng = random.Random(3)
    sources = [{"id": "policy-refund", "score": 0.21}]
    relevance, grounded = judge("Can I get a refund?", "Yes within 30 days", sources, rng)
    assert relevance.name == "relevance" and relevance.value == 0.35
    assert "policy-refund" in relevance.comment and "refund" in relevance.comment
    assert grounded.name == "hallucination" and 0 <= grounded.value <= 1
    good, comment = feedback_for(rng, "How do I export traces?", "x", elapsed_s=9.0)
    assert not good or comment is None or "export" in (comment or "")


def _get(url: str, path: str, **params: Any) -> Any:
    r = httpx.get(url + path, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def _state(url: str) -> dict[str, Any]:
    """What the demo has shown so far, through the public API."""
    events = {e["event"] for e in _get(url, "/api/v1/alerts/history", rule=RULE)["items"]}
    slos = {s["id"]: s for s in _get(url, "/api/v1/slos")["items"]}
    names = {s["name"] for s in _get(url, "/api/v1/scores/summary", range="1h")["items"]}
    scores = _get(url, "/api/v1/scores", range="1h", limit=1000)["items"]
    low = [s for s in scores if s["value"] is not None and s["value"] < 0.5]
    return {"events": events, "slos": slos, "names": names, "low": low}


def _done(s: dict[str, Any]) -> bool:
    return (
        {"firing", "resolved"} <= s["events"]
        and all(slo["total"] > 0 for slo in s["slos"].values())
        and {"hallucination", "relevance", "user_feedback"} <= s["names"]
        and len(s["low"]) >= 5
    )


@pytest.mark.slow
def test_demo_shows_slos_an_incident_that_fires_and_resolves_scores_and_review_items(
    tmp_path: Path,
) -> None:
    port, demo_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "watchkeeper", "demo", "--port", str(port),
           "--demo-port", str(demo_port), "--data-dir", str(tmp_path / "data")]  # fmt: skip
    log = (tmp_path / "demo.log").open("wb")
    env = {**os.environ, SCALE_ENV: str(SCALE)}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    started, state = time.monotonic(), None
    try:
        while time.monotonic() - started < 150:
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            try:
                state = _state(url)
            except httpx.HTTPError:
                state = None  # the server is still starting
            if state and _done(state):
                break
            time.sleep(2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    took = time.monotonic() - started
    assert state is not None, (tmp_path / "demo.log").read_text()[-3000:]
    assert {"firing", "resolved"} <= state["events"], (took, state["events"])
    assert set(state["slos"]) == {"demo-availability", "demo-latency"}
    assert all(slo["total"] > 0 for slo in state["slos"].values()), state["slos"]
    assert state["slos"]["demo-availability"]["bad"] > 0  # the incident burnt budget
    assert {"hallucination", "relevance", "user_feedback"} <= state["names"]
    # The review queue: varied items, not one row repeated (the same question asked twice
    # may well get the same relevance and comment, on another trace).
    low = state["low"]
    rows = Counter((s["name"], s["value"], s["comment"]) for s in low)
    assert len(low) >= 5 and len(rows) >= 0.6 * len(low), rows.most_common(3)
    assert rows.most_common(1)[0][1] <= max(3, len(low) // 5), rows.most_common(3)
    assert len({s["name"] for s in low}) >= 2 and len({s["trace_id"] for s in low}) >= 5
    assert took < 150
