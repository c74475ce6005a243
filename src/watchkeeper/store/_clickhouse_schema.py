"""The ClickHouse layout of the span store's logical schema (the same columns as DuckDB).

Tables are `MergeTree`s ordered by (project, start time), so every filtered query reads
only its project's time range; `ReplacingMergeTree` on the span key makes replays collapse
on merge (queries still see a replay until then: the one writer checks keys first, as the
DuckDB store does). Used by the query-layer tests on chDB; the backend joins later.
"""

from __future__ import annotations

from dataclasses import fields

from watchkeeper.model import ScoreRow, SpanRow
from watchkeeper.store._duckdb_schema import sql_type

_CH = {"BIGINT": "Int64", "DOUBLE": "Float64", "INTEGER": "Int32", "VARCHAR": "String"}
_NOT_NULL = {
    "project", "trace_id", "span_id", "parent_span_id", "name", "start_ns", "duration_ns",
    "service", "environment", "span_kind", "operation", "status_code", "outcome", "cost_source",
    "score_id", "created_ns", "source",
}  # fmt: skip
_LOW_CARDINALITY = {
    "project", "service", "environment", "span_kind", "operation", "status_code", "outcome",
    "cost_source", "provider", "request_model", "response_model",
}  # fmt: skip


def _column(name: str, score: bool = False) -> str:
    kind = _CH[sql_type(name)]
    if name not in _NOT_NULL or (score and name == "span_id"):
        kind = f"Nullable({kind})"
    if name in _LOW_CARDINALITY:
        kind = f"LowCardinality({kind})"
    return f"{name} {kind}"


def create_statements(ttl_days: int | None = None) -> list[str]:
    """CREATE TABLE statements of spans, scores and traces (with a TTL when given)."""
    ttl = "" if ttl_days is None else (
        f" TTL toDateTime(intDiv(start_ns, 1000000000)) + INTERVAL {int(ttl_days)} DAY"
    )  # fmt: skip
    spans = ", ".join(_column(f.name) for f in fields(SpanRow))
    scores = ", ".join(_column(f.name, score=True) for f in fields(ScoreRow))
    return [
        f"CREATE TABLE IF NOT EXISTS spans ({spans}) ENGINE = ReplacingMergeTree "
        f"PARTITION BY toYYYYMMDD(toDateTime(intDiv(start_ns, 1000000000))) "
        f"ORDER BY (project, start_ns, trace_id, span_id){ttl}",
        f"CREATE TABLE IF NOT EXISTS scores ({scores}) ENGINE = ReplacingMergeTree "
        "ORDER BY (project, created_ns, score_id)",
        "CREATE TABLE IF NOT EXISTS traces (trace_id String, "
        "min_start_ns SimpleAggregateFunction(min, Int64), "
        "max_start_ns SimpleAggregateFunction(max, Int64)) "
        "ENGINE = AggregatingMergeTree ORDER BY trace_id",
    ]
