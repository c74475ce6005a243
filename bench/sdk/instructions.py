"""Instructions per guarded call, counted by valgrind's callgrind: a figure machine noise does
not move, for comparing two versions of the SDK's hot path.

Run: .venv/bin/python -m bench.sdk.instructions     (needs valgrind: apt-get install valgrind)

Each case runs in a child process under callgrind twice, with N1 and N2 calls after a warm-up;
(Ir(N2) - Ir(N1)) / (N2 - N1) is the count per call, start-up and warm-up cancelling out. The
span processor only queues spans (no export thread, whose work callgrind would count too).
Cases: `raw`, a bare OpenTelemetry span with the guard span's attributes, made current and
ended (the baseline); `sync` and `async`, a guarded immediately-returning call.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from prometheus_client import CollectorRegistry

import watchkeeper
from watchkeeper.sdk import _runtime

CASES = ("raw", "sync", "async")
WARM_UP = 200


class Queue(SpanProcessor):
    """Keeps the last spans, as a batch processor's queue would, and exports nothing."""

    def __init__(self) -> None:
        self.spans: collections.deque[ReadableSpan] = collections.deque(maxlen=2048)

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def work() -> int:
    return 1


async def awork() -> int:
    return 1


def run_case(case: str, calls: int) -> None:
    """In the child: set the SDK up and make `calls` calls of `case` after the warm-up."""
    watchkeeper.init("bench", span_processor=Queue(), registry=CollectorRegistry(), json_logs=False)
    g = watchkeeper.guard("bench", deadline=8.0)
    if case == "async":
        guarded = g(awork)

        async def loop(n: int) -> None:
            for _ in range(n):
                await guarded()

        asyncio.run(loop(WARM_UP + calls))
        return
    fn: Callable[[], Any] = g(work)
    if case == "raw":
        fn()  # builds the guard's span attributes
        telemetry = g.policy.health.telemetry
        assert telemetry is not None and _runtime._current is not None
        tracer, name, attrs = _runtime._current.tracer, telemetry.span_name, telemetry.span_attrs

        def fn() -> int:
            span = tracer.start_span(name, attributes=attrs)
            token = otel_context.attach(trace.set_span_in_context(span))
            result = work()
            otel_context.detach(token)
            span.end()
            return result

    for _ in range(WARM_UP + calls):
        fn()


def instructions(case: str, calls: int) -> int:
    """Instructions callgrind counted in a child that ran `calls` calls of `case`."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.sdk.instructions", "--child", case, str(calls)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs=2, default=(1000, 3000), metavar=("N1", "N2"))
    parser.add_argument("--child", nargs=2, metavar=("CASE", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_case(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    n1, n2 = args.calls
    per_call = {c: (instructions(c, n2) - instructions(c, n1)) / (n2 - n1) for c in CASES}
    print(f"instructions per call under callgrind ((Ir({n2}) - Ir({n1})) / {n2 - n1}):")
    for case in CASES:
        extra = per_call[case] - per_call["raw"]
        note = "  (baseline)" if case == "raw" else f"  (+{extra:,.0f} over the bare span)"
        print(f"  {case:<5} {per_call[case]:>10,.0f}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
