"""How fast each UI page gets its data on a large store: `python -m bench.ui`.

Builds (or reuses) a DuckDB file of --rows realistic spans ending now (with the query
benchmark's generator, bench/query), serves it with the real app (create_app + uvicorn on an
ephemeral loopback port), loads every page in headless Chromium and reports, per page, the
slowest API request it made (server time + transfer, from the browser's resource timing)
and the time until the page had rendered all of its data (`main[aria-busy=false]`).

The goal (issue 5: "every page's data under 200 ms") is read on `data`: from the start of
the page's first API request to the end of its last one, i.e. how long the page waits for
its data, requests running at once as the page makes them. `ready` adds loading the page's
own files and drawing, in the same browser on the same two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "query"))
from generate import SPANS_PER_TRACE, Shape  # noqa: E402
from run import build  # noqa: E402

from watchkeeper.config import load_config  # noqa: E402
from watchkeeper.server.app import create_app  # noqa: E402

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The page's API requests: those started before it had drawn its data (the app marks that
# moment; the nav badge asks after it).
RESOURCE_TIMES = """() => {
  const ready = performance.getEntriesByName('wk-page-ready').at(-1)?.startTime ?? Infinity;
  return performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/api/') && e.startTime < ready)
  .map((e) => ({url: e.name.split('/api/v1/')[1].split('?')[0], full: e.name,
                ms: e.responseEnd - e.requestStart, start: e.startTime, end: e.responseEnd}));
}"""


def pages(trace_id: str) -> dict[str, str]:
    """The pages to time, with the range a dashboard user would pick."""
    return {
        "overview 24h": "/?range=24h&live=0",
        "overview 7d": "/?range=7d&live=0",
        "traces 24h": "/traces?range=24h",
        "traces, outcome=error, 7d": "/traces?range=7d&outcome=error",
        "model calls, model=gpt-4o, 7d": "/traces?range=7d&scope=llm&model=gpt-4o",
        "trace": f"/traces/{trace_id}",
        "sessions 24h": "/sessions?range=24h&live=0",
        "users 24h": "/users?range=24h&live=0",
        "review 7d": "/review?range=7d&live=0",
    }


def serve(data_dir: Path) -> tuple[uvicorn.Server, str]:
    """The real app on the data directory, project "bench", no keys."""
    config = load_config(
        env={},
        overrides={"server": {"data_dir": str(data_dir)}, "auth": {"default_project": "bench"}},
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def one_at_a_time(urls: list[str]) -> list[float]:
    """The same requests again, sequentially (no contention between them), in ms."""
    out = []
    with httpx.Client(timeout=60) as client:
        for u in urls:
            t0 = time.perf_counter()
            client.get(u).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


def time_page(page: Any, url: str, runs: int) -> dict[str, Any]:
    """Median page-data time and the slowest request of the median run."""
    results: list[tuple[float, list[dict[str, Any]]]] = []
    for _ in range(runs + 1):  # the first load warms caches (files, DuckDB buffers)
        page.goto("about:blank")
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelector('main').getAttribute('aria-busy') === 'false'",
            timeout=120_000,
        )
        ready = (time.perf_counter() - t0) * 1000
        results.append((ready, page.evaluate(RESOURCE_TIMES)))
    timed = sorted(results[1:], key=lambda r: r[0])
    ready, reqs = timed[len(timed) // 2]
    slowest = max(reqs, key=lambda r: r["ms"]) if reqs else {"url": "-", "ms": 0.0}
    data = max(r["end"] for r in reqs) - min(r["start"] for r in reqs) if reqs else 0.0
    return {
        "page_ready_ms": round(ready, 1),
        "data_ms": round(data, 1),
        "requests": len(reqs),
        "slowest_request": slowest["url"],
        "slowest_request_ms": round(slowest["ms"], 1),
        "median_request_ms": round(statistics.median(r["ms"] for r in reqs), 1) if reqs else 0,
        "each_ms": sorted((r["url"], round(r["ms"], 1)) for r in reqs),
        "sequential_ms": sorted(
            zip(
                [r["url"] for r in reqs],
                [round(x, 1) for x in one_at_a_time([r["full"] for r in reqs])],
                strict=True,
            )
        ),
    }


def main() -> None:
    """Build or reuse the data, serve it, time every page, print a table and JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/watchkeeper-ui-bench"))
    ap.add_argument("--only", default="", help="time only pages whose name contains this")
    args = ap.parse_args()
    data_dir = args.dir / f"data-{args.rows}"
    spans = data_dir / "spans.duckdb"
    if not spans.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        end_ns = (time.time_ns() // 60_000_000_000) * 60_000_000_000
        print(f"generating {args.rows:,} spans ...", file=sys.stderr)
        build(spans, Shape(traces=args.rows // SPANS_PER_TRACE, end_ns=end_ns))
    server, base = serve(data_dir)
    from playwright.sync_api import sync_playwright

    first = httpx.get(f"{base}/api/v1/traces", params={"range": "24h", "limit": 1}).json()
    out: dict[str, Any] = {"rows": args.rows, "pages": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for name, path in pages(first["items"][0]["trace_id"]).items():
            if args.only not in name:
                continue
            out["pages"][name] = r = time_page(page, base + path, args.runs)
            print(
                f"{name:32} data {r['data_ms']:6.1f} ms  ready {r['page_ready_ms']:6.1f} ms  "
                f"{r['requests']:2} requests, slowest {r['slowest_request']} "
                f"{r['slowest_request_ms']:.1f} ms  (goal: data < 200 ms)",
                flush=True,
            )
        browser.close()
    server.should_exit = True
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
