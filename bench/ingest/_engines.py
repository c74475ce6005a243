"""The span store engine an ingest benchmark runs on, the zero-loss check, and both engines
side by side (`python -m bench.ingest --engine both`).

`--engine clickhouse` starts the same server with `store.backend = chdb` (ClickHouse
in-process, its files in the run's data directory); every other part of the run is the
DuckDB run's. `both` runs the benchmark once per engine, each in a fresh process on a fresh
data directory (the same flags otherwise), and prints their figures side by side; each
run's figures land in `results/ingest-<engine>.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENGINES = ("duckdb", "clickhouse")
#: What the server's environment says for each engine.
ENV = {"duckdb": {}, "clickhouse": {"WATCHKEEPER_STORE__BACKEND": "chdb"}}
NAMES = {"duckdb": "DuckDB", "clickhouse": "ClickHouse (chDB)"}
RESULTS = Path(__file__).resolve().parent / "results"
GOAL_SPANS_S = 20_000


def env(engine: str) -> dict[str, str]:
    """The server's environment for `engine`."""
    return dict(ENV[engine])


def verdict(acked: int, stored: int) -> str:
    """Zero loss: every acknowledged span in the store, counted once."""
    if stored == acked:
        return "all present, each counted once"
    if stored > acked:
        return f"{stored - acked} COUNTED TWICE"
    return f"{acked - stored} MISSING"


def record(engine: str | None, figures: dict[str, Any]) -> None:
    """Print the zero-loss line and keep the run's figures in `results/ingest-<engine>.json`
    (engine None: a server given by --url, whose engine we do not know)."""
    acked, stored = figures["acked_spans"], figures["stored_spans"]
    engine = engine or "url"
    name = NAMES.get(engine, "the server at --url")
    print(
        f"zero loss ({name}): {acked:,} spans acknowledged, {stored:,} in the store "
        f"({verdict(acked, stored)})"
    )
    RESULTS.mkdir(exist_ok=True)
    out = {"engine": engine, "command": " ".join(["python -m bench.ingest", *sys.argv[1:]])}
    out |= {"at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **figures}
    (RESULTS / f"ingest-{engine}.json").write_text(json.dumps(out, indent=2) + "\n")


def both(argv: list[str]) -> None:
    """Run the benchmark on each engine in turn (a fresh process each), then side by side."""
    rest, skip = [], False
    for arg in argv:  # every flag but `--engine both` / `--engine=both`
        if skip or arg == "--engine":
            skip = not skip
        elif not arg.startswith("--engine="):
            rest.append(arg)
    runs: dict[str, dict[str, Any]] = {}
    for engine in ENGINES:
        print(f"\n===== {NAMES[engine]} =====", flush=True)
        cmd = [sys.executable, "-m", "bench.ingest", *rest, "--engine", engine]
        if subprocess.run(cmd, check=False).returncode != 0:
            sys.exit(f"the {engine} run failed")
        runs[engine] = json.loads((RESULTS / f"ingest-{engine}.json").read_text())
    side_by_side(runs)


def side_by_side(runs: dict[str, dict[str, Any]]) -> None:
    """The engines' figures in one table."""
    rows = (
        ("acknowledged spans/s", "acked_per_s", "{:,.0f}"),
        ("written spans/s (sustained)", "written_per_s", "{:,.0f}"),
        ("ack -> written p50 (s)", "lag_p50_s", "{:.2f}"),
        ("ack -> written p99 (s)", "lag_p99_s", "{:.2f}"),
        ("µs/span inside store.write", "write_us_per_span", "{:.0f}"),
        ("server peak RSS, with workers (MiB)", "peak_rss_mib", "{:,.0f}"),
        ("acknowledged spans", "acked_spans", "{:,}"),
        ("in the store at the end", "stored_spans", "{:,}"),
    )
    names = [NAMES[e] for e in runs]
    print(f"\n{'':38}" + "".join(f"{n:>20}" for n in names))
    for label, key, fmt in rows:
        cells = []
        for fig in runs.values():
            v = fig.get(key)
            cells.append(f"{'n/a' if v is None else fmt.format(v):>20}")
        print(f"{label:38}" + "".join(cells))
    for engine, fig in runs.items():
        ok = fig["written_per_s"] >= GOAL_SPANS_S
        print(
            f"{NAMES[engine]}: {fig['written_per_s']:,.0f} written spans/s "
            f"({'meets' if ok else 'BELOW'} the goal of {GOAL_SPANS_S:,}/s); "
            f"{verdict(fig['acked_spans'], fig['stored_spans'])}; load at its end: {fig['load']}"
        )
