"""The read side of the metric store: PromQL label matchers as SQL over `metric_series`,
and the samples read back split into one `SeriesData` per series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

_MATCH_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher as PromQL writes it: `name op value` (regexes match whole values)."""

    name: str
    op: str  # one of =, !=, =~, !~
    value: str


@dataclass(slots=True)
class SeriesData:
    """One series' samples in a time range: times (ms) and values (NaN where stale)."""

    labels: dict[str, str]
    t_ms: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]
    stale: np.ndarray[Any, np.dtype[np.bool_]]


def where_sql(matchers: Sequence[Matcher], params: list[Any]) -> str:
    """SQL conditions on `metric_series` for the matchers (DuckDB's regexes are RE2, as
    Prometheus's are; a label absent is the empty string, as in PromQL)."""
    parts = []
    for m in matchers:
        if m.op not in _MATCH_OPS:
            raise ValueError(f"unknown matcher operator {m.op!r}")
        if m.name == "__name__":
            column = "metric"
        else:
            params.append(m.name)
            column = "coalesce(labels[?], '')"
        params.append(m.value)
        parts.append(
            {
                "=": f"{column} = ?",
                "!=": f"{column} <> ?",
                "=~": f"regexp_full_match({column}, ?, 's')",
                "!~": f"NOT regexp_full_match({column}, ?, 's')",
            }[m.op]
        )
    return " AND ".join(parts) or "TRUE"


def split_series(found: list[tuple[Any, ...]], table: pa.Table) -> list[SeriesData]:
    """One `SeriesData` per series of `found` (id, metric, labels) with rows in `table`
    (series_id, t_ms, value; ordered by series and time)."""
    labels = {sid: {"__name__": metric, **dict(lb)} for sid, metric, lb in found}
    if not table.num_rows:
        return []
    sids = table.column("series_id").to_numpy()
    times = table.column("t_ms").to_numpy()
    raw = table.column("value")
    stale = raw.is_null().to_numpy(zero_copy_only=False)
    values = raw.fill_null(float("nan")).to_numpy()
    bounds = np.flatnonzero(np.diff(sids)) + 1
    out = []
    for lo, hi in zip(
        np.concatenate(([0], bounds)), np.concatenate((bounds, [len(sids)])), strict=True
    ):
        out.append(SeriesData(labels[int(sids[lo])], times[lo:hi], values[lo:hi], stale[lo:hi]))
    return out
