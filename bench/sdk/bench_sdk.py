"""SDK overhead benchmark: `observe` vs a bare OpenTelemetry span, and `guard` overhead.

Run: .venv/bin/python bench/sdk/bench_sdk.py [--quick]

* span cost: the same attributes, the same BatchSpanProcessor, an exporter that discards.
  Rounds alternate between the two so machine noise hits both; the figure is the ratio of the
  medians of per-round mean cost per span (goal <= 1.25).
* guard overhead: median per-call time of a guarded immediately-returning function minus the
  median of the bare call, sync and async, before init (guard logic only) and after init
  (with its two spans and metrics). Goal <= 20 us median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

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


def per_span_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


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

    results: dict[str, list[float]] = {"bare": [], "observe": [], "observe_block": []}
    for fn in (bare, observed, block):  # warm-up
        per_span_us(fn, n // 10)
    for _ in range(rounds):
        results["bare"].append(per_span_us(bare, n))
        results["observe"].append(per_span_us(observed, n))
        results["observe_block"].append(per_span_us(block, n))
    watchkeeper.shutdown()
    bare_provider.shutdown()
    return {k: statistics.median(v) for k, v in results.items()}


def median_call_ns(fn: Callable[[], Any], n: int) -> float:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t = clock()
        fn()
        samples.append(clock() - t)
    return statistics.median(samples)


async def amedian_call_ns(fn: Callable[[], Any], n: int) -> float:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t = clock()
        await fn()
        samples.append(clock() - t)
    return statistics.median(samples)


async def async_medians(guarded: Callable[[], Any], n: int) -> tuple[float, float]:
    """(bare, guarded) median ns of an immediately-returning coroutine."""
    await amedian_call_ns(guarded, n // 10)
    return await amedian_call_ns(awork, n), await amedian_call_ns(guarded, n)


def guard_overhead(n: int) -> dict[str, float]:
    """Median guard overhead in microseconds, sync and async, without and with telemetry."""
    out: dict[str, float] = {}
    for phase in ("no_telemetry", "telemetry"):
        if phase == "telemetry":
            watchkeeper.init(
                "bench",
                span_processor=BatchSpanProcessor(Discard(), max_queue_size=65536),
                registry=CollectorRegistry(),
                json_logs=False,
            )
        g = watchkeeper.guard(f"bench-{phase}", deadline=8.0)
        sync_guarded = g(work)
        median_call_ns(sync_guarded, n // 10)
        base = median_call_ns(work, n)
        guarded = median_call_ns(sync_guarded, n)
        out[f"sync_{phase}_baseline_us"] = base / 1000
        out[f"sync_{phase}_overhead_us"] = (guarded - base) / 1000
        abase, aguarded = asyncio.run(async_medians(g(awork), n))
        out[f"async_{phase}_baseline_us"] = abase / 1000
        out[f"async_{phase}_overhead_us"] = (aguarded - abase) / 1000
        watchkeeper.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    rounds, n, calls = (3, 2000, 5000) if args.quick else (9, 20000, 50000)
    trace.get_tracer_provider()  # the global provider stays the default: we never set it

    costs = span_cost(rounds, n)
    print(f"span cost (median of {rounds} rounds x {n} spans, BatchSpanProcessor + discard):")
    print(f"  bare OpenTelemetry span   {costs['bare']:7.2f} us/span  (baseline)")
    for key in ("observe", "observe_block"):
        ratio = costs[key] / costs["bare"]
        print(f"  {key:<25} {costs[key]:7.2f} us/span  ratio {ratio:.2f}x (goal <= 1.25x)")
    g = guard_overhead(calls)
    print(f"guard overhead around an immediately-returning call (median of {calls} calls):")
    for mode in ("sync", "async"):
        for phase in ("no_telemetry", "telemetry"):
            base = g[f"{mode}_{phase}_baseline_us"]
            over = g[f"{mode}_{phase}_overhead_us"]
            print(
                f"  {mode:<5} {phase:<13} overhead {over:7.2f} us  (bare call {base:.2f} us; "
                "goal <= 20 us)"
            )
        spans = 2 * costs["bare"]
        rest = g[f"{mode}_telemetry_overhead_us"] - spans
        print(
            f"  {mode:<5} telemetry = 2 spans (guard + attempt) at the bare span cost "
            f"({spans:.2f} us) + {rest:.2f} us of guard logic and metrics"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
