"""The demo under its default (realistic) profile against a real server (not a test; by hand).

    .venv/bin/python -m tests.demo.bench_demo [rate] [seconds]

Prints the demo process's CPU and memory, what the load got, and what the server stored.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.server._process import ServerProcess

import watchkeeper
from watchkeeper.demo import run_demo


def main(rate: float = 20.0, seconds: float = 15.0) -> None:
    """Run the demo for `seconds` at `rate` requests a second and print the figures."""
    server = ServerProcess(Path(tempfile.mkdtemp()) / "data").start()
    try:
        t0, r0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
        result = run_demo(server.url, rate=rate, duration=seconds, port=0, seed=42, json_logs=False)
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.time() - t0
        watchkeeper.shutdown()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        print(f"wall {wall:.1f} s, demo process CPU {cpu:.1f} s ({100 * cpu / wall:.0f}% of a "
              f"core), max RSS {r1.ru_maxrss / 1024:.0f} MB")  # fmt: skip
        print(result.load)
        time.sleep(3)  # ingest is asynchronous
        get = lambda **p: httpx.get(f"{server.url}/api/v1/summary", params={"range": "1h", **p})  # noqa: E731
        spans, req = get().json(), get(scope="requests").json()
        ms = ", ".join(f"{q} {req[f'{q}_ms']:.0f} ms" for q in ("p50", "p95", "p99"))
        print(f"server: {spans['count']} spans for {req['count']} root spans; requests {ms}, "
              f"timeouts {req['timeouts']}, fallbacks {req['fallbacks']}, errors {req['errors']}; "
              f"cost ${spans['cost_usd']:.4f}")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:3]))
