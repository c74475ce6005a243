"""CPU cost of evaluating many rules per cycle, in-process on a DuckDB store."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from watchkeeper.alerting import load_alerting_config
from watchkeeper.alerting._engine import Evaluator
from watchkeeper.alerting._metrics import AlertMetrics
from watchkeeper.model import SpanBatch, SpanRow
from watchkeeper.store.duckdb import DuckDBStore
from watchkeeper.store.meta import MetaStore

SERVICES = ("chat", "search", "summarize", "agent", "support")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5")
ROUTES = ("/chat", "/answer", "/search", "/summarize")
OUTCOMES = ("success",) * 90 + ("error",) * 5 + ("timeout",) * 3 + ("fallback",) * 2


def _spans(n: int, now: float) -> list[SpanBatch]:
    rng = random.Random(7)
    batches, spans = [], []
    for i in range(n):
        root = i % 2 == 0
        spans.append(
            SpanRow(
                project="default",
                trace_id=f"{i // 2:032x}",
                span_id=f"{i:016x}",
                parent_span_id="" if root else f"{i - 1:016x}",
                name="POST /chat" if root else "chat",
                start_ns=int((now - rng.uniform(0, 3600)) * 1e9),
                duration_ns=int(rng.lognormvariate(0.3, 0.8) * 1e9),
                service=rng.choice(SERVICES),
                operation="http" if root else "llm",
                outcome=rng.choice(OUTCOMES),
                request_model=None if root else rng.choice(MODELS),
                http_route=rng.choice(ROUTES) if root else None,
                input_tokens=None if root else rng.randrange(100, 4000),
                output_tokens=None if root else rng.randrange(10, 800),
                cost_usd=None if root else rng.uniform(0.0001, 0.05),
            )
        )
        if len(spans) == 20_000:
            batches.append(SpanBatch(spans))
            spans = []
    if spans:
        batches.append(SpanBatch(spans))
    return batches


def rules(n: int, distinct: bool = False) -> list[dict[str, Any]]:
    """`n` realistic rules: a mix of kinds, groupings, filters and windows.

    With `distinct`, every rule gets a window of its own, so no two rules share a query:
    the worst case for the engine.
    """
    kinds: list[dict[str, Any]] = [
        {"kind": "outcome_ratio", "outcomes": ["timeout"], "threshold": "10%", "min_count": 20},
        {"kind": "outcome_ratio", "outcomes": ["error"], "threshold": "5%", "group_by": "model"},
        {"kind": "latency", "statistic": "p95", "threshold": 6500, "group_by": "service"},
        {"kind": "sum", "field": "cost_usd", "threshold": 50, "filters": {"scope": "llm"}},
        {"kind": "count", "threshold": 1, "filters": {"outcomes": ["rejected"]}},
    ]
    out = []
    for i in range(n):
        base = kinds[i % len(kinds)]
        filters = {
            **base.get("filters", {}),
            "scope": base.get("filters", {}).get("scope", "requests"),
        }
        if i % 3 == 0:
            filters["services"] = [SERVICES[i % len(SERVICES)]]
        window: Any = 300 + i if distinct else ("5m", "15m", "1h")[i % 3]
        out.append({**base, "id": f"bench-{i}", "window": window, "filters": filters})
    return out


def measure_cpu(n_rules: int, n_spans: int, distinct: bool = False, cycles: int = 5) -> None:
    """Print CPU seconds per cycle of `n_rules` rules and its share of a core at 5 s."""
    now = time.time()
    with tempfile.TemporaryDirectory() as d:
        store = DuckDBStore(Path(d) / "spans.duckdb")
        for batch in _spans(n_spans, now):
            store.write(batch)
        meta = MetaStore(f"sqlite:///{Path(d) / 'meta.sqlite'}")
        meta.create_all()
        config = load_alerting_config({"starter_rules": False, "rules": rules(n_rules, distinct)})
        ev = Evaluator(config, store, meta, AlertMetrics(CollectorRegistry()))
        ev.cycle(now)  # warm caches and create state
        cpu, wall, asked = [], [], []
        for k in range(cycles):
            c0, w0 = time.process_time(), time.perf_counter()
            result = ev.cycle(now + 5 * (k + 1))
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            asked.append(ev.last_queries)
            assert result.errors == 0
        store.close()
        meta.close()
    per_cycle = sum(cpu) / len(cpu)
    print(
        f"{n_rules} rules ({'distinct' if distinct else 'shared'} queries: {max(asked)} store"
        f" queries per cycle) over {n_spans:,} spans: {per_cycle:.3f} CPU s per cycle"
        f" (wall {sum(wall) / len(wall):.3f} s) = {100 * per_cycle / 5.0:.1f}% of one core at"
        f" the default 5 s interval; goal < 10%"
    )
