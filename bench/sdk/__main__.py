"""SDK overhead benchmark: `observe` vs a bare OpenTelemetry span, and `guard` overhead.

Run: .venv/bin/python -m bench.sdk [--quick]

* span cost: the same attributes, the same BatchSpanProcessor, an exporter that discards.
  Rounds alternate between them so machine noise hits both; the figure is the median over
  rounds of the ratio of per-call medians (and, for reference, of means). Goal <= 1.25.
* guard overhead: median per-call time of a guarded immediately-returning function minus the
  median of the bare call, sync (the default: on a worker thread, the caller waiting at most
  until the deadline), sync inline (the opt-in) and async, before init (guard logic only) and
  after init (with its metrics and its one span: a call whose first attempt answers records
  only the guard span; attempt spans appear only when it retries). Each round times the bare
  and guarded calls back to back; the figure is the median over rounds of their difference.
  Goals (issue 15): <= 60 us sync, <= 25 us async.
* guard lateness: sync callers (threads) and async tasks at once, their callees in turn
  succeeding, slow, late, hanging and failing; every call's time past its deadline. The
  promise is every call answered by its deadline plus a small scheduling margin: the figure
  is the worst lateness of all calls, with how many were answered by deadline + 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bench._machine import load
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

import watchkeeper
from watchkeeper.model import conventions as c


class Discard(SpanExporter):
    """Counts spans and drops them."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def work() -> int:
    return 1


async def awork() -> int:
    return 1


def span_cost(rounds: int, n: int) -> dict[str, float]:
    """Median per-span cost of a bare OTel span and of observe (decorator and block)."""
    bare_provider = TracerProvider()
    bare_provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    tracer = bare_provider.get_tracer("bench")
    attrs = {c.WK_OPERATION: "workflow", c.GEN_AI_OPERATION_NAME: "invoke_workflow"}

    def bare() -> int:
        with tracer.start_as_current_span("work", attributes=attrs) as span:
            result = work()
            span.set_attribute(c.WK_OUTCOME, "success")
            return result

    watchkeeper.init(
        "bench",
        span_processor=BatchSpanProcessor(Discard(), max_queue_size=65536),
        registry=CollectorRegistry(),
        json_logs=False,
    )
    observed = watchkeeper.observe("work")(work)

    def block() -> int:
        with watchkeeper.observe("work"):
            return work()

    fns = {"bare": bare, "observe": observed, "observe_block": block}
    means: dict[str, list[float]] = {k: [] for k in fns}
    medians: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        call_samples_us(fn, n // 10)
    for i in range(rounds):
        order = list(fns)[i % 3 :] + list(fns)[: i % 3]  # rotate: no side always goes first
        for key in order:
            samples = call_samples_us(fns[key], n)
            means[key].append(statistics.fmean(samples))
            medians[key].append(statistics.median(samples))
    watchkeeper.shutdown()
    bare_provider.shutdown()
    out = {f"{k}_mean": statistics.median(v) for k, v in means.items()}
    out.update({f"{k}_median": statistics.median(v) for k, v in medians.items()})
    for key in ("observe", "observe_block"):
        # Each round's pair ran back to back: the median of per-round ratios cancels the drift
        # of a machine shared with other work.
        for stat, table in (("mean", means), ("median", medians)):
            ratios = [o / b for o, b in zip(table[key], table["bare"], strict=True)]
            out[f"{key}_{stat}_ratio"] = statistics.median(ratios)
    return out


def call_samples_us(fn: Callable[[], Any], n: int) -> list[float]:
    """Per-call times of `fn` in microseconds."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t = clock()
        fn()
        samples.append((clock() - t) / 1000)
    return samples


def median_call_ns(fn: Callable[[], Any], n: int) -> float:
    """Median per-call time of `fn` in nanoseconds."""
    return statistics.median(call_samples_us(fn, n)) * 1000


async def amedian_call_ns(fn: Callable[[], Any], n: int) -> float:
    """Median per-call time of the coroutine function `fn` in nanoseconds."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t = clock()
        await fn()
        samples.append(clock() - t)
    return statistics.median(samples)


def bare_span_fn() -> Callable[[], Any]:
    """A bare OpenTelemetry span around `work`, on its own provider with the same processor."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    tracer = provider.get_tracer("bench")

    def bare() -> int:
        with tracer.start_as_current_span("work"):
            return work()

    return bare


# no_telemetry: before init (guard logic only); telemetry: spans and metrics;
# sampled_out: init(sample_rate=0), spans not recorded but metrics still are.
PHASES = ("no_telemetry", "telemetry", "sampled_out")
# sync: the default (a worker thread); inline: sync_mode="inline", the opt-in; async.
MODES = ("sync", "inline", "async")
BARE_OF = {"inline": "sync"}  # the bare call an inline guarded call is compared with
GOALS_US = {"sync": 60.0, "async": 25.0}


async def phase_rounds(rounds: int, n: int, phase: str) -> dict[str, list[float]]:
    """Per-round medians (ns) of the bare and guarded calls, sync and async, and of a bare
    span; each round measures them all back to back, so machine drift hits them alike."""
    g = watchkeeper.guard(f"bench-{phase}", deadline=8.0)
    inline = watchkeeper.guard(f"bench-{phase}-inline", deadline=8.0, sync_mode="inline")
    fns: dict[str, Callable[[], Any]] = {
        "sync_bare": work,
        "sync_guarded": g(work),
        "inline_guarded": inline(work),
    }
    afns: dict[str, Callable[[], Any]] = {"async_bare": awork, "async_guarded": g(awork)}
    if phase == "telemetry":
        fns["span"] = bare_span_fn()
    for fn in fns.values():  # warm-up
        median_call_ns(fn, n // 10)
    for afn in afns.values():
        await amedian_call_ns(afn, n // 10)
    out: dict[str, list[float]] = {k: [] for k in (*fns, *afns)}
    for _ in range(rounds):
        for key, fn in fns.items():
            out[key].append(median_call_ns(fn, n))
        for key, afn in afns.items():
            out[key].append(await amedian_call_ns(afn, n))
    return out


def guard_overhead(rounds: int, n: int) -> dict[str, float]:
    """Median guard overhead in microseconds, sync and async, without and with telemetry: the
    median over rounds of (guarded median - bare median) within the round."""
    out: dict[str, float] = {}
    for phase in PHASES:
        if phase != "no_telemetry":
            watchkeeper.init(
                "bench",
                span_processor=BatchSpanProcessor(Discard(), max_queue_size=65536),
                registry=CollectorRegistry(),
                json_logs=False,
                sample_rate=0.0 if phase == "sampled_out" else 1.0,
            )
        per_round = asyncio.run(phase_rounds(rounds, n, phase))
        if "span" in per_round:
            out["span_median_us"] = statistics.median(per_round["span"]) / 1000
        for mode in MODES:
            bare = per_round[f"{BARE_OF.get(mode, mode)}_bare"]
            guarded = per_round[f"{mode}_guarded"]
            overheads = [gd - b for gd, b in zip(guarded, bare, strict=True)]
            out[f"{mode}_{phase}_baseline_us"] = statistics.median(bare) / 1000
            out[f"{mode}_{phase}_overhead_us"] = statistics.median(overheads) / 1000
            out[f"{mode}_{phase}_range_us"] = (max(overheads) - min(overheads)) / 1000
        watchkeeper.shutdown()
    return out


LATE_DEADLINE = 0.2
KINDS = ("succeed", "slow", "late", "hang", "fail")
SYNC_CALLERS, ASYNC_CALLERS, CALLS_EACH = 16, 64, 5


class Mix:
    """Callees of each kind, sync and async; a hang lasts until the round's end."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arelease: asyncio.Event | None = None

    def sync(self, kind: str) -> Callable[[], str]:
        def callee() -> str:
            if kind == "slow":
                time.sleep(LATE_DEADLINE / 4)
            elif kind == "late":
                time.sleep(LATE_DEADLINE * 2)
            elif kind == "hang":
                self.release.wait(30)
            elif kind == "fail":
                raise ConnectionError("reset by peer")
            return "ok"

        return callee

    def async_(self, kind: str) -> Callable[[], Any]:
        async def callee() -> str:
            if kind == "slow":
                await asyncio.sleep(LATE_DEADLINE / 4)
            elif kind == "late":
                await asyncio.sleep(LATE_DEADLINE * 2)
            elif kind == "hang":
                assert self.arelease is not None
                await self.arelease.wait()
            elif kind == "fail":
                raise ConnectionError("reset by peer")
            return "ok"

        return callee


def _timed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    with contextlib.suppress(Exception):  # timeouts and failures are answers too
        fn()
    return time.monotonic() - start


async def _atimed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    with contextlib.suppress(Exception):
        await fn()
    return time.monotonic() - start


def lateness_round(r: int) -> tuple[list[float], list[float]]:
    """One round: sync callers on threads and async tasks at once; each call's time past its
    deadline (negative: answered before it), sync and async."""
    mix = Mix()
    # No breaker: an open one refuses at once, which would hide the timeout path measured here.
    options: dict[str, Any] = {"deadline": LATE_DEADLINE, "backoff": 0.02, "breaker": False}
    sync = {k: watchkeeper.guard(f"late-sync-{k}", **options)(mix.sync(k)) for k in KINDS}
    asyn = {k: watchkeeper.guard(f"late-async-{k}", **options)(mix.async_(k)) for k in KINDS}
    sync_times: list[float] = []

    def caller(i: int) -> None:
        for j in range(CALLS_EACH):
            sync_times.append(_timed(sync[KINDS[(i + j + r) % len(KINDS)]]))

    async def tasks() -> list[float]:
        mix.arelease = asyncio.Event()

        async def task(i: int) -> list[float]:
            return [await _atimed(asyn[KINDS[(i + j + r) % len(KINDS)]]) for j in range(CALLS_EACH)]

        done = await asyncio.gather(*(task(i) for i in range(ASYNC_CALLERS)))
        mix.arelease.set()
        return [t for times in done for t in times]

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(SYNC_CALLERS)]
    for t in threads:
        t.start()
    async_times = asyncio.run(tasks())
    for t in threads:
        t.join()
    mix.release.set()  # the hung sync calls return; their worker threads serve again
    return [t - LATE_DEADLINE for t in sync_times], [t - LATE_DEADLINE for t in async_times]


def print_lateness(rounds: int) -> None:
    """Worst lateness past the deadline over `rounds` rounds of the concurrent mix."""
    watchkeeper.init(
        "bench",
        span_processor=BatchSpanProcessor(Discard(), max_queue_size=65536),
        registry=CollectorRegistry(),
        json_logs=False,
    )
    per_round = [lateness_round(r) for r in range(rounds)]
    watchkeeper.shutdown()
    print(
        f"guard lateness past the deadline ({rounds} rounds; each {SYNC_CALLERS} sync callers "
        f"and {ASYNC_CALLERS} async tasks at once, {CALLS_EACH} calls each, callees in turn "
        f"{'/'.join(KINDS)}, deadline {LATE_DEADLINE * 1000:.0f} ms, telemetry on, no breaker):"
    )
    for index, mode in enumerate(("sync", "async")):
        late = [x for rnd in per_round for x in rnd[index]]
        worsts = [max(rnd[index]) * 1000 for rnd in per_round]
        kept = sum(x <= 0.05 for x in late)
        p99 = statistics.quantiles(late, n=100)[98] * 1000
        print(
            f"  {mode:<6} worst {max(late) * 1000:6.1f} ms over the deadline (p99 {p99:.1f} ms; "
            f"rounds' worst {min(worsts):.1f}-{max(worsts):.1f} ms); {kept}/{len(late)} calls "
            "answered by deadline + 50 ms"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    rounds, n, calls = (6, 2000, 1000) if args.quick else (15, 4000, 5000)
    trace.get_tracer_provider()  # the global provider stays the default: we never set it
    print(f"machine at start: {load()}")

    costs = span_cost(rounds, n)
    print(f"span cost per call ({rounds} rounds x {n} spans, BatchSpanProcessor + discard):")
    print(
        f"  bare OpenTelemetry span   median {costs['bare_median']:6.2f} us, "
        f"mean {costs['bare_mean']:6.2f} us  (baseline)"
    )
    for key in ("observe", "observe_block"):
        print(
            f"  {key:<25} median {costs[key + '_median']:6.2f} us, "
            f"mean {costs[key + '_mean']:6.2f} us  ratio {costs[key + '_median_ratio']:.2f}x "
            f"(of means {costs[key + '_mean_ratio']:.2f}x; goal <= 1.25x)"
        )
    g = guard_overhead(rounds, calls)
    print(
        f"guard overhead around an immediately-returning call ({rounds} rounds x {calls} calls; "
        "median over rounds of guarded minus bare median):"
    )
    for mode in MODES:
        goal = f"goal <= {GOALS_US[mode]:g} us" if mode in GOALS_US else "opt-in, no deadline"
        for phase in PHASES:
            base = g[f"{mode}_{phase}_baseline_us"]
            over = g[f"{mode}_{phase}_overhead_us"]
            spread = g[f"{mode}_{phase}_range_us"]
            print(
                f"  {mode:<6} {phase:<12} overhead {over:7.2f} us  (rounds spread {spread:.2f} us; "
                f"bare call {base:.2f} us; {goal})"
            )
        span = g["span_median_us"]
        rest = g[f"{mode}_telemetry_overhead_us"] - span
        print(
            f"  {mode:<6} of which 1 span (the guard span; no attempt span without a retry) at "
            f"the median bare-span cost {span:.2f} us, and {rest:.2f} us guard logic, metrics "
            "and the span's attributes"
        )
    print_lateness(3 if args.quick else 8)
    print(f"machine at end: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
