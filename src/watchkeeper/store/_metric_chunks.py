"""Closed time blocks of the metric store's samples, kept per series as chunks.

The writer appends samples in arrival order (every series each round), so a read of many
series over a long range had to put millions of rows back in (series, time) order: at 24 h
of 5k series, the join and that ordering were two thirds of a `rate`'s time. As
Prometheus's TSDB cuts its head into blocks, `compact_step` moves the samples of a block
(BLOCK_MS of time) that is over into `metric_chunks`: one row per (series, block) holding
the series' times (int32 from the chunk's first, `t0_ms`) and values (float64, a
staleness marker as Prometheus's stale NaN) as raw little-endian arrays. Read in (series,
first time) order, the chunks' bytes are every series' samples end to end in time order:
numpy orders the rows by their small columns and takes the bytes along (`decode`), with no
sort of samples and no Python per chunk.

Why a series' samples stay in order across the two tables: the writer refuses a sample
older than its series' last (out-of-order window 0), so a series' samples are written in
time order. A compaction moves, per series, every sample older than its block's end (a
prefix of what the series has in `metric_samples`), so each chunk of a series holds later
samples than its chunks before it, and what is left in `metric_samples` is later than all
of them. A read puts a series' chunk samples first, then its samples still in
`metric_samples` (`_metric_read.merge`). The same holds for a late sample of a block
already compacted (a series that was quiet, then sent an older time than the block's end):
it is later than its series' last, and becomes a chunk of its own at the next step.

Values stay raw float64 (8 bytes a sample, 4 for the time): compressing each chunk would
cost one decompression call per chunk per read (60k at 24 h of 5k series).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

#: The time block compacted at once (Prometheus's smallest block is 2 h too).
BLOCK_MS = 2 * 3600 * 1000
#: A block is compacted when the newest sample is this far past its end, so that samples a
#: little late (a remote-write queue catching up) still land in `metric_samples` first.
GRACE_MS = 3600 * 1000
#: About how many samples one `compact_step` moves (the writer waits for it).
STEP_SAMPLES = 500_000
#: Prometheus's staleness marker: a NaN with this bit pattern (a NaN sample is another NaN).
STALE_BITS = np.uint64(0x7FF0000000000002)

DDL = (
    "CREATE TABLE metric_chunks (series_no BIGINT NOT NULL, t0_ms BIGINT NOT NULL, "
    "t1_ms BIGINT NOT NULL, n INTEGER NOT NULL, times BLOB NOT NULL, vals BLOB NOT NULL)"
)


@dataclass(slots=True)
class Samples:
    """Samples as columns: which series (a number or a position), time, value (NaN where
    stale), whether stale."""

    key: np.ndarray[Any, np.dtype[np.int64]]
    t_ms: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]
    stale: np.ndarray[Any, np.dtype[np.bool_]]


def _binary(offsets: np.ndarray[Any, Any], data: np.ndarray[Any, Any]) -> pa.Array:
    """A binary array of the byte ranges `offsets` (in bytes) cut from `data`'s bytes."""
    return pa.Array.from_buffers(
        pa.binary(),
        len(offsets) - 1,
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data))],
    )


def encode(rows: Samples) -> pa.Table:
    """The chunks of samples sorted by (series number, time): one per (series, block)."""
    key, t = rows.key, rows.t_ms
    block = t // BLOCK_MS
    cut = np.flatnonzero((key[1:] != key[:-1]) | (block[1:] != block[:-1])) + 1
    starts = np.concatenate(([0], cut)).astype(np.int64)
    ends = np.concatenate((cut, [len(t)])).astype(np.int64)
    t0 = t[starts]
    bits = rows.values.view(np.uint64).copy()
    bits[rows.stale] = STALE_BITS
    offsets = np.concatenate((starts, [len(t)]))
    return pa.table(
        {
            "series_no": key[starts],
            "t0_ms": t0,
            "t1_ms": t[ends - 1],
            "n": (ends - starts).astype(np.int32),
            "times": _binary(offsets * 4, (t - np.repeat(t0, ends - starts)).astype("<i4")),
            "vals": _binary(offsets * 8, bits.astype("<u8")),
        }
    )


def _payload(column: pa.ChunkedArray, dtype: str) -> np.ndarray[Any, Any]:
    """Every value of a binary column end to end, as `dtype` (no copy when in one piece)."""
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(arr) == 0:
        return np.zeros(0, dtype)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    return np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0] : offsets[-1]].view(dtype)


def decode(table: pa.Table, key: str) -> Samples:
    """The samples of chunk rows (`key`, n, t0_ms, times, vals) in any order, in (`key`,
    time) order.

    The rows are ordered here, by their small columns, and their samples follow: an ORDER
    BY in DuckDB sorts the rows with their arrays, which must all fit in its memory (a day
    of 5k series, 76 MiB of arrays, failed under the metric store's limit of 61 MiB)."""
    n = table.column("n").to_numpy().astype(np.int64)
    keys = table.column(key).to_numpy()
    t0 = table.column("t0_ms").to_numpy()
    rel = _payload(table.column("times"), "<i4")
    bits = _payload(table.column("vals"), "<u8")
    rows = np.lexsort((t0, keys))
    if len(rows) and (rows[1:] < rows[:-1]).any():
        # each sample's place in the rows' arrays: few arrays of a sample each (a query of
        # a day reads 7M samples: every such array is fresh pages the kernel must give)
        sizes = n[rows]
        kind = np.int32 if len(rel) < 2**31 else np.int64
        index = np.repeat(
            ((np.cumsum(n) - n)[rows] - (np.cumsum(sizes) - sizes)).astype(kind), sizes
        )
        index += np.arange(len(rel), dtype=kind)
        n, keys, t0, rel, bits = sizes, keys[rows], t0[rows], rel[index], bits[index]
        del index
    else:
        bits = bits.copy()  # the buffer is DuckDB's result
    t = np.repeat(t0.astype(np.int64), n)
    t += rel
    stale = bits == STALE_BITS
    values = bits.view(np.float64)
    values[stale] = np.nan
    return Samples(np.repeat(keys, n), t, values, stale)


def read_chunks(cur: Any, start_ms: int, end_ms: int) -> Samples:
    """The samples in [start_ms, end_ms] of the chunks of the series in the registered
    `_wk_ids` (no, k), in (k, time) order; `key` is k."""
    table = cur.sql(
        "SELECT i.k, c.n, c.t0_ms, c.times, c.vals FROM metric_chunks c JOIN _wk_ids i "
        "ON c.series_no = i.no WHERE c.t1_ms >= ? AND c.t0_ms <= ?",
        params=[start_ms, end_ms],
    ).to_arrow_table()
    got = decode(table, "k")
    inside = (got.t_ms >= start_ms) & (got.t_ms <= end_ms)
    if inside.all():
        return got
    return Samples(got.key[inside], got.t_ms[inside], got.values[inside], got.stale[inside])


def block_due(con: Any, newest_ms: int | None) -> int | None:
    """The end of the oldest block in `metric_samples` if it is over (GRACE_MS before
    `newest_ms`, the newest sample's time), else None: nothing to compact."""
    if newest_ms is None:
        return None
    oldest = con.execute("SELECT min(t_ms) FROM metric_samples").fetchall()[0][0]
    if oldest is None:
        return None
    end = (int(oldest) // BLOCK_MS + 1) * BLOCK_MS
    return end if end + GRACE_MS <= newest_ms else None


def compact_step(con: Any, end: int) -> int:
    """Move one step of the samples before `end` (`block_due`) from `metric_samples` into
    chunks, in the caller's transaction (raises `duckdb.Error`); the samples moved."""
    lo, hi, rows = con.execute(
        "SELECT min(series_no), max(series_no), count(*) FROM metric_samples WHERE t_ms < ?",
        [end],
    ).fetchall()[0]
    width = max(1, (int(hi) - int(lo) + 1) * STEP_SAMPLES // max(int(rows), 1))
    where = "t_ms < ? AND series_no >= ? AND series_no < ?"
    params = [end, int(lo), int(lo) + width]
    found = con.sql(
        f"SELECT series_no, t_ms, value FROM metric_samples WHERE {where} ORDER BY series_no, t_ms",
        params=params,
    ).to_arrow_table()
    raw = found.column("value")
    rows_moved = Samples(
        found.column("series_no").to_numpy(),
        found.column("t_ms").to_numpy(),
        raw.fill_null(float("nan")).to_numpy(),
        raw.is_null().to_numpy(zero_copy_only=False),
    )
    _insert(con, rows_moved)
    con.execute(f"DELETE FROM metric_samples WHERE {where}", params)
    return int(found.num_rows)


def delete_before(con: Any, cutoff_ms: int) -> int:
    """Delete the chunks' samples older than `cutoff_ms` (in the caller's transaction): a
    chunk wholly older goes, one across the cutoff is written again with what it keeps;
    the samples deleted."""
    (gone,) = con.execute(
        "SELECT coalesce(sum(n), 0) FROM metric_chunks WHERE t1_ms < ?", [cutoff_ms]
    ).fetchall()[0]
    across = con.sql(
        "SELECT series_no, n, t0_ms, times, vals FROM metric_chunks WHERE t0_ms < ? AND t1_ms >= ?",
        params=[cutoff_ms, cutoff_ms],
    ).to_arrow_table()
    con.execute("DELETE FROM metric_chunks WHERE t0_ms < ?", [cutoff_ms])
    if not across.num_rows:
        return int(gone)
    rows = decode(across, "series_no")
    keep = rows.t_ms >= cutoff_ms
    _insert(con, Samples(rows.key[keep], rows.t_ms[keep], rows.values[keep], rows.stale[keep]))
    return int(gone) + int((~keep).sum())


def _insert(con: Any, rows: Samples) -> None:
    """Append the chunks of `rows` (sorted by series number and time)."""
    if not len(rows.key):
        return
    con.register("_wk_chunks", encode(rows))
    con.execute("INSERT INTO metric_chunks SELECT * FROM _wk_chunks")
    con.unregister("_wk_chunks")
