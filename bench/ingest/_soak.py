"""The soak: a steady offered load for a long while, the dashboards' queries beside it.

Per minute it prints the server's RSS (with its workers), the ack -> queryable lag p99 of
the probe traces sent that minute, the p95 of the dashboard queries run that minute (every
5 s: summary, series, breakdown, heatmap, traces list), spans written, the store writes
that took longer than a second (the writer's stalls), errors, and how fast one core ran
at the minute's end (the host is shared: a slow minute may be the machine's); then the
slope of each column over the run (per minute, least squares), and whether every span that
was acknowledged is in the store at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import psutil
from bench._machine import core_speed

#: The overview page's queries, as the UI sends them, over the last 15 minutes (after the
#: first 15 minutes of a soak, the window holds a steady amount of data).
DASHBOARD = (
    ("/api/v1/summary", {"range": "15m", "scope": "requests"}),
    ("/api/v1/timeseries", {"range": "15m", "step_ms": "60000", "scope": "requests"}),
    ("/api/v1/breakdown", {"range": "15m", "by": "model", "scope": "llm"}),
    ("/api/v1/heatmap", {"range": "15m", "scope": "requests"}),
    ("/api/v1/traces", {"range": "15m", "limit": "50"}),
)


HEADER = "minute  RSS MiB  lag p99 s  query p95 ms  written/s  writes >1 s  errors  core M/s"


@dataclass
class Minute:
    """What one minute of the soak saw."""

    rss_mib: float = 0.0
    lags: list[float] = field(default_factory=list)
    queries: list[float] = field(default_factory=list)
    errors: int = 0
    written: float = 0.0
    slow_writes: float = 0.0  # since the start
    core_speed: float = 0.0  # bench._machine.core_speed at the minute's end


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def slope(values: list[float]) -> float:
    """Least-squares slope of `values` per step (0 for fewer than two)."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    return num / sum((i - mx) ** 2 for i in range(n))


class Soak:
    """Collects per-minute figures while the senders run; `report` prints them."""

    def __init__(
        self,
        url: str,
        pid: int | None,
        written: Callable[[], float],
        slow_writes: Callable[[], float],
    ) -> None:
        self.url = url
        self.pid = pid
        self.written = written
        self.slow_writes = slow_writes
        self.minutes: list[Minute] = [Minute()]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.by_route: dict[str, list[float]] = {path: [] for path, _ in DASHBOARD}

    @property
    def now(self) -> Minute:
        """The current minute's record."""
        return self.minutes[-1]

    def add_lag(self, seconds: float) -> None:
        """One probe trace's ack -> queryable lag (called by the probe)."""
        with self.lock:
            self.now.lags.append(seconds)

    def run_queries(self) -> None:
        """Every 5 s, the dashboard's queries; their latencies and failures are recorded."""
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.wait(5.0):
                for path, params in DASHBOARD:
                    t = time.perf_counter()
                    try:
                        ok = client.get(path, params=params).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    elapsed = time.perf_counter() - t
                    with self.lock:
                        self.now.queries.append(elapsed)
                        self.by_route[path].append(elapsed)
                        self.now.errors += not ok

    def tick_minutes(self) -> None:
        """Close a minute every 60 s: its RSS and the spans written by then."""
        while not self.stop.wait(60.0 - (time.monotonic() - self.started) % 60.0):
            self._close_minute()

    def _close_minute(self) -> None:
        rss = 0
        if self.pid is not None:
            proc = psutil.Process(self.pid)
            rss = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
        written, slow, speed = self.written(), self.slow_writes(), core_speed(1_000_000)
        with self.lock:
            self.now.rss_mib, self.now.written, self.now.slow_writes = rss / 2**20, written, slow
            self.now.core_speed = speed
            self.minutes.append(Minute())
            n = len(self.minutes) - 1
        if n == 1:
            print(HEADER, flush=True)
        print(self._line(n)[0], flush=True)  # as it happens: a long soak can be read live

    def _line(self, i: int) -> tuple[str, tuple[float, float, float]]:
        """Minute `i` (from 1): its printed row, and its RSS, lag p99 and query p95 (ms)."""
        m, before = self.minutes[i - 1], self.minutes[i - 2] if i > 1 else Minute()
        lag, q = _pct(m.lags, 0.99), _pct(m.queries, 0.95)
        line = (
            f"{i:6}  {m.rss_mib:7.0f}  {_num(lag, 1):>9}  {_num(q, 1000):>12}  "
            f"{(m.written - before.written) / 60.0:9,.0f}  "
            f"{m.slow_writes - before.slow_writes:11.0f}  {m.errors:6}  {m.core_speed:8.1f}"
        )
        return line, (m.rss_mib, lag or 0.0, (q or 0.0) * 1000)

    def report(self, acked: int, stored: int, sender_errors: int) -> None:
        """Print the per-minute table again, the slopes, and the final check."""
        lines = [self._line(i) for i in range(1, len(self.minutes))]  # the last is partial
        print(HEADER)
        for line, _ in lines:
            print(line)
        rows = [row for _, row in lines]
        for label, part in (("all minutes", rows), ("after minute 15", rows[15:])):
            if len(part) > 1:
                rss, lag, q = (slope([r[k] for r in part]) for k in range(3))
                print(
                    f"slope per minute, {label}: RSS {rss:+.2f} MiB, lag p99 {lag:+.3f} s, "
                    f"query p95 {q:+.2f} ms"
                )
        for path, seconds in self.by_route.items():
            p50, p95 = _pct(seconds, 0.5), _pct(seconds, 0.95)
            print(f"  {path:22} p50 {_num(p50, 1000):>5} ms  p95 {_num(p95, 1000):>5} ms")
        errors = sum(m.errors for m in self.minutes) + sender_errors
        verdict = "all present" if stored == acked else f"{acked - stored} MISSING"
        print(
            f"end: {acked:,} spans acknowledged, {stored:,} in the store ({verdict}); "
            f"{errors} errors"
        )


def _num(v: float | None, scale: float) -> str:
    return "n/a" if v is None else f"{v * scale:.2f}" if scale == 1 else f"{v * scale:.0f}"
