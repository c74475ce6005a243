"""Alerting benchmark.

    .venv/bin/python -m bench.alerts                 # 20 trials at ~5,000 spans/s, 200 rules
    .venv/bin/python -m bench.alerts --trials 5 --rules 50 --quick

1. Latency: a real `watchkeeper serve` (evaluation interval 1 s) ingests ~5,000 spans/s of
   realistic traffic; each trial sends 20 timed-out requests of a new service and measures
   from the acknowledgement of that request to the webhook receiving the firing notification.
2. CPU: 200 rules (ratios, percentiles, sums, counts; grouped and not) evaluated in-process
   over a DuckDB store of recent spans; CPU seconds per cycle (`time.process_time`, all
   threads) as a share of one core at the default 5 s interval.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from bench.alerts._cpu import measure_cpu
from bench.alerts._load import PROTOBUF, Load, Receiver, breach_body


def _config(path: Path, hook: str) -> Path:
    rule = {
        "id": "bench-timeouts",
        "kind": "outcome_ratio",
        "outcomes": ["timeout"],
        "filters": {"scope": "requests"},
        "group_by": "service",
        "max_groups": 50,
        "window": "30s",  # the breach spans last 8 s: they start well before they arrive
        "threshold": "50%",
        "min_count": 5,
        "severity": "critical",
    }
    alerting = {
        "interval": 1,
        "starter_rules": False,
        "rules": [rule],
        "max_notifications_per_rule_per_hour": 1000,
        "channels": [{"type": "webhook", "name": "hook", "url": hook}],
    }
    path.write_text(yaml.safe_dump({"alerting": alerting}))
    return path


def _serve(tmp: Path, config: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "watchkeeper", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(tmp / "data"), "--config", str(config)]
    log = (tmp / "server.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"server did not start; see {tmp / 'server.log'}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_latency(trials: int, spans_per_s: int) -> None:
    """Print p50/p99/max of breach-acknowledged → webhook-received over `trials` trials."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        receiver = Receiver()
        proc, url = _serve(tmp, _config(tmp / "wk.yaml", receiver.url))
        load = Load(url, spans_per_s).start()
        lags: list[float] = []
        missed = 0
        try:
            time.sleep(3)  # let the load settle
            for i in range(trials):
                service = f"bench-breach-{i}"
                r = httpx.post(f"{url}/v1/traces", content=breach_body(service), headers=PROTOBUF)
                acked = time.monotonic()
                assert r.status_code == 200, r.text
                arrived = receiver.wait_firing(service, timeout=30)
                if arrived is None:
                    missed += 1
                else:
                    lags.append(arrived - acked)
                time.sleep(0.3 + (i % 7) * 0.13)  # spread trials over the evaluation phase
        finally:
            rate = load.stop()
            proc.terminate()
            proc.wait(30)
            receiver.close()
    print(f"ingest load: {rate:,.0f} spans/s acknowledged ({load.refused} requests refused)")
    if lags:
        print(
            f"breach ack -> webhook: p50 {_pct(lags, 0.5):.2f} s, p99 {_pct(lags, 0.99):.2f} s,"
            f" max {max(lags):.2f} s over {len(lags)} trials (missed {missed}); goal p99 <= 5 s"
        )
    else:
        print(f"no notification arrived in {trials} trials")


def main() -> None:
    """Run both measurements and print the figures."""
    p = argparse.ArgumentParser(prog="python -m bench.alerts")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--rate", type=int, default=5000, help="background spans per second")
    p.add_argument("--rules", type=int, default=200)
    p.add_argument("--spans", type=int, default=200_000, help="spans in the CPU bench store")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-cpu", action="store_true")
    args = p.parse_args()
    if not args.skip_latency:
        measure_latency(args.trials, args.rate)
    if not args.skip_cpu:
        measure_cpu(args.rules, args.spans)
        measure_cpu(args.rules, args.spans, distinct=True)


if __name__ == "__main__":
    main()
