"""Run the demo: fake providers, the instrumented demo service, and load against it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import watchkeeper
from watchkeeper.demo._app import Upstreams, create_demo_app
from watchkeeper.demo._evals import Evaluator
from watchkeeper.demo._load import LoadStats, run_load
from watchkeeper.demo._scenario import SERVICE, IncidentProfile, Schedule, schedule_from_env
from watchkeeper.demo._service import DemoOptions
from watchkeeper.demo.fake_providers import (
    FakeServer,
    Profile,
    RandomProfile,
    fake_anthropic,
    fake_openai,
)
from watchkeeper.errors import ConfigError
from watchkeeper.sdk import flush_feedback

SERVICE_NAME = SERVICE
#: After a stop, requests in flight get this long to finish; then the fake providers answer
#: at once (503), so Ctrl-C ends the whole demo within seconds, not a slow answer's tail.
STOP_GRACE_S = 0.5


@dataclass
class DemoResult:
    """What a demo run did, and whether its telemetry was flushed."""

    load: LoadStats
    demo_url: str
    flushed: bool
    scores_posted: int = 0


def run_demo(
    server_url: str = "http://127.0.0.1:4318",
    *,
    api_key: str | None = None,
    rate: float = 8.0,
    duration: float = 0.0,
    port: int = 8000,
    stop_event: threading.Event | None = None,
    profile: Profile | None = None,
    options: DemoOptions = DemoOptions(),
    seed: int | None = None,
    json_logs: bool = True,
    schedule: Schedule | None = None,
) -> DemoResult:
    """Run the demo until `stop_event` is set or `duration` seconds passed (0: until stopped).

    Starts the fake providers (realistic random failures unless `profile` is given), sends the
    demo service's telemetry to `server_url`, serves the service on 127.0.0.1:`port` (0: any
    free port) and drives it at `rate` requests a second; with a `schedule`, OpenAI fails
    during its incident. An evaluator scores some answers. Blocks; returns what it did.
    """
    stop = stop_event or threading.Event()
    profile = profile or RandomProfile(seed=seed)
    incident = None if schedule is None else IncidentProfile(profile, schedule, seed=seed)
    # The service logs what it answered at INFO (the root logger stays at Python's WARNING);
    # the SDK sends those records, with their trace ids, to the server's /v1/logs.
    logging.getLogger("watchkeeper.demo").setLevel(logging.INFO)
    watchkeeper.init(
        SERVICE_NAME,
        endpoint=server_url,
        api_key=api_key,
        environment="demo",
        capture_content=True,
        json_logs=json_logs,
    )
    done = threading.Event()
    with fake_openai(incident or profile) as oai, fake_anthropic(profile) as ant:
        upstreams = Upstreams(openai_url=oai.url + "/v1", anthropic_url=ant.url)
        app = create_demo_app(upstreams, options, seed)
        cut = (oai.closing, ant.closing)
        threading.Thread(target=_cut_short, args=(stop, done, cut), daemon=True).start()
        with FakeServer(app, port=port, lifespan="on") as demo:
            if incident is not None:
                incident.restart()  # the schedule counts from the first request
            load, posted = asyncio.run(
                _drive(demo.url, server_url, api_key, rate, stop, duration, seed)
            )
        done.set()
    flushed = watchkeeper.flush(10.0)
    flushed = flush_feedback(10.0) and flushed
    return DemoResult(load=load, demo_url=demo.url, flushed=flushed, scores_posted=posted)


async def _drive(
    demo_url: str,
    server_url: str,
    api_key: str | None,
    rate: float,
    stop: threading.Event,
    duration: float,
    seed: int | None,
) -> tuple[LoadStats, int]:
    """The load, with an evaluator posting scores to the server; (stats, scores posted)."""
    evaluator = Evaluator(server_url, api_key, seed=seed)
    try:
        load = await run_load(
            demo_url, rate=rate, stop=stop, duration=duration, seed=seed, evaluator=evaluator
        )
    finally:
        await evaluator.aclose()
    return load, evaluator.posted


def _cut_short(
    stop: threading.Event, done: threading.Event, closing: tuple[threading.Event, ...]
) -> None:
    """Once `stop` is set, give requests in flight `STOP_GRACE_S`, then close the providers."""
    while not stop.wait(0.1):
        if done.is_set():
            return
    if not done.wait(STOP_GRACE_S):
        for event in closing:
            event.set()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="watchkeeper-demo",
        description="A sample AI service (RAG + agent) on fake LLM providers, under load, "
        "sending its telemetry to a Watchkeeper server.",
    )
    p.add_argument("--server-url", default="http://127.0.0.1:4318", help="Watchkeeper server")
    p.add_argument("--api-key", default=None, help="API key for the server (if it needs one)")
    p.add_argument("--rate", type=float, default=8.0, help="requests a second (default 8)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 = forever")
    p.add_argument("--port", type=int, default=8000, help="port of the demo service")
    p.add_argument("--seed", type=int, default=None, help="seed for a repeatable run")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: run the demo until Ctrl-C or `--duration`; 0 on success."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if not 0 < args.rate <= 200:
        print(f"--rate {args.rate}: give 0 < rate <= 200 requests a second", file=sys.stderr)
        return 2
    try:
        schedule = schedule_from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = threading.Event()
    # Ctrl-C (or SIGTERM) asks the load loop to stop and the servers to close cleanly; a
    # KeyboardInterrupt raised mid-request would leave them waiting on in-flight calls.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"demo: service on http://127.0.0.1:{args.port}, telemetry to {args.server_url}")
    start, end = schedule.at(schedule.incident_start_s), schedule.at(schedule.incident_end_s)
    print(f"demo: OpenAI fails most calls from {start:.0f} s to {end:.0f} s after the start")
    try:
        result = run_demo(
            args.server_url,
            api_key=args.api_key,
            rate=args.rate,
            duration=args.duration,
            port=args.port,
            stop_event=stop,
            seed=args.seed,
            schedule=schedule,
        )
    except KeyboardInterrupt:
        stop.set()
        print("demo: stopped")
        return 0
    finally:
        watchkeeper.shutdown()
    load = result.load
    print(
        f"demo: sent {load.sent} requests {dict(load.statuses)}, feedback {load.feedback}, "
        f"evaluation scores {result.scores_posted}"
    )
    return 0
