"""Each series' last sample in the metric store's file, kept behind the writer's memory.

The writer knows every series' last sample (it decides each new sample against it), so
the file's copy (`metric_series.last_ms`, `last_value`) need not move with every write:
rewriting it was one set-based UPDATE per write, a cost that grows with the series table.
It is written once a second (and before retention and at close) for every series that
moved (`flush`). What a crash can lose is only that copy: each write records, in the
same transaction as its samples, the oldest sample time written since the last flush
(`metric_writer.pending_from_ms`), and opening the file reads the samples from there to
set the series' last again (`recover`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

LastSample = tuple[int, float | None]


def note_pending(con: Any, from_ms: int) -> None:
    """Record (in the caller's transaction) that samples from `from_ms` on are written
    while their series' last in the file may not yet say so."""
    con.execute(
        "UPDATE metric_writer SET pending_from_ms = least(coalesce(pending_from_ms, $t), $t)",
        {"t": from_ms},
    )


def flush(con: Any, moved: pa.Table | None) -> None:
    """Write the last sample of every series that moved (`moved`: sid, t, v), in one
    transaction (raises `duckdb.Error`; the caller rolls back)."""
    con.execute("BEGIN TRANSACTION")
    if moved is not None:
        con.register("_wk_last", moved)
        con.execute(
            "UPDATE metric_series SET last_ms = l.t, last_value = l.v FROM _wk_last l "
            "WHERE metric_series.series_id = l.sid"
        )
        con.unregister("_wk_last")
    con.execute("UPDATE metric_writer SET pending_from_ms = NULL")
    con.execute("COMMIT")


def recover(con: Any) -> list[tuple[int, int, float | None]]:
    """After a stop without a flush: (series id, time, value) of each series' newest
    sample written since the last flush (empty when the file is up to date)."""
    row = con.execute("SELECT pending_from_ms FROM metric_writer").fetchone()
    if row is None or row[0] is None:
        return []
    rows: list[tuple[int, int, float | None]] = con.execute(
        "SELECT s.series_id, max(m.t_ms), arg_max_null(m.value, m.t_ms) "
        "FROM metric_samples m JOIN metric_series s USING (series_no) "
        "WHERE m.t_ms >= ? GROUP BY s.series_id",
        [row[0]],
    ).fetchall()
    return rows
