"""The metric store on DuckDB: series apart, samples in a narrow time-ordered table.

A sample row is (series number, time, value): the number is the series' in this file
(`metric_series.series_no`, given in order of creation), not its 64-bit id, so that DuckDB
bit-packs it (schema 4: 16 -> 8 bytes a sample in-process over 6 h of 10k series). The
writer moves the samples of each 2-hour block that is over into per-series chunks
(`_metric_chunks`, schema 6), a step at a time, after a write or while idle (`maintain`),
so that a long read needs no reordering. A read returns every selected series' samples as
one `SampleBlock` of arrays, from the chunks and then the recent samples.

Its own database file (`<data_dir>/metrics.duckdb`), beside the span store's: one writer
(the metric ingest thread) and queries from any thread, like the span store, but neither
waits on the other's write lock or checkpoints, and the span store's engine code can move
(issue 11) without this moving with it. Both files are opened by the server process only.

What the writer keeps, as Prometheus's TSDB does (out-of-order window 0):
- a sample older than its series' last one is rejected (`out_of_order`); one at the same
  time is ignored when its value is the same (`duplicate`: so a replayed spool record stores
  nothing twice) and rejected when it differs (`duplicate_timestamp`);
- a delta sample (OTLP delta temporality) is added to the series' last value: counters and
  histogram buckets are kept cumulative, and `rate` sees counter resets as Prometheus does;
- a new series past `max_series_per_project` is dropped (`series_limit`), and the warning
  names the metric with the most series and its label with the most values.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from watchkeeper.errors import StoreError
from watchkeeper.model import Metadata, Sample
from watchkeeper.store import _duckdb_file, _metric_chunks, _metric_last
from watchkeeper.store._metric_read import (
    Matcher,
    SampleBlock,
    SeriesData,
    read_block,
    where_sql,
)
from watchkeeper.store._metric_series import KnownSeries, series_id, series_table
from watchkeeper.store._metric_write import Rows, SampleColumns, check
from watchkeeper.store._metrics_schema import migrate

__all__ = [
    "Matcher",
    "MetricsStore",
    "SampleBlock",
    "SampleColumns",
    "SeriesData",
    "WriteResult",
    "series_id",
]

log = logging.getLogger("watchkeeper.store.metrics")

_WARN_EVERY_S = 60.0
_FLUSH_LAST_S = 1.0  # how often each series' last sample is written to the file
_COMPACT_IDLE_S = 10.0  # how often to look for a block to compact
_COMPACT_BUSY_S = 1.0  # the wait between two steps of compaction while there is more


@dataclass(slots=True)
class WriteResult:
    """What one `write` stored and what it turned away, by reason."""

    written: int = 0
    new_series: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    warning: str = ""  # the series limit was reached: which metric and label to look at
    seconds: float = 0.0  # how long the write took, the lock's wait left out


class MetricsStore:
    """Series, samples and metadata in one DuckDB file; `path=None` keeps them in memory."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        max_series_per_project: int = 200_000,
        memory_limit_mb: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self.max_series_per_project = max_series_per_project
        self._clock = clock
        self._con = _duckdb_file.connect(
            path, what="metric store", migrate=migrate, memory_limit_mb=memory_limit_mb
        )
        # a read's only input DuckDB checks is the matchers' regular expressions
        self._cursor = _duckdb_file.Cursors(
            self._con, what="metric store", bad_input="invalid regular expression in a matcher"
        )
        self._lock = threading.Lock()  # one write at a time
        self._known = KnownSeries()  # the writer's state, loaded from the file
        self._meta: dict[tuple[str, str], Metadata] = {}
        self._warned: dict[str, float] = {}
        self._flushed_at = clock()
        self._compact_at = clock()
        self._compacting = False  # the last step moved samples: more may be due
        self._pending_from: int | None = None  # the file's metric_writer.pending_from_ms
        self.limit_warnings: dict[str, str] = {}  # project -> the last series-limit warning
        self._load()

    def _load(self) -> None:
        # The series table holds each series' last sample (no scan of the samples).
        known = self._known
        for sid, no, project, metric, t, v in self._con.execute(
            "SELECT series_id, series_no, project, metric, last_ms, last_value FROM metric_series"
        ).fetchall():
            known.load(sid, no, project, metric, (t, v))
        for project, metric, typ, unit, help_ in self._con.execute(
            "SELECT project, metric, type, unit, help FROM metric_metadata"
        ).fetchall():
            self._meta[(project, metric)] = Metadata(typ, unit, help_)
        for sid, t, v in _metric_last.recover(self._con):  # stopped without a flush
            known.recovered(sid, (t, v))
        self._flush_last()

    def close(self) -> None:
        """Write each series' last sample, checkpoint and close the file."""
        with self._lock:
            try:
                self._flush_last()
            except StoreError as exc:  # the next open reads them from the samples again
                log.error("%s", exc)
            self._con.close()

    def _flush_last(self) -> None:
        """Write the last sample of every series that moved since the last flush."""
        try:
            _metric_last.flush(self._con, self._known.moved())
        except duckdb.Error as exc:
            with suppress(duckdb.Error):
                self._con.execute("ROLLBACK")
            raise StoreError(f"metric store: writing series' last samples failed: {exc}") from exc
        self._known.flushed()
        self._flushed_at = self._clock()
        self._pending_from = None

    # --- writing ----------------------------------------------------------------------------

    def write(
        self, project: str, samples: Sequence[Sample], metadata: dict[str, Metadata] | None = None
    ) -> WriteResult:
        """Store samples of one project (one writer thread); see the module docstring."""
        return self.write_columns(project, SampleColumns.from_samples(samples), metadata)

    def write_columns(
        self, project: str, cols: SampleColumns, metadata: dict[str, Metadata] | None = None
    ) -> WriteResult:
        """Store samples of one project given as columns (what the decoders make)."""
        with self._lock:
            started = time.perf_counter()
            result = self._write(project, cols, metadata or {})
            result.seconds = time.perf_counter() - started
            return result

    def _write(
        self, project: str, cols: SampleColumns, metadata: dict[str, Metadata]
    ) -> WriteResult:
        result = WriteResult()
        known = self._known
        slots = known.slots(project, cols.series, self.max_series_per_project)
        slot = slots.entry[cols.index]
        usable = slots.allowed[slot]
        if limited := int(len(slot) - usable.sum()):
            result.rejected["series_limit"] += limited
        checked = check(cols, slot, usable, slots.last)
        result.rejected.update(checked.rejected)
        keep = checked.keep
        numbers = known.numbers(slots)
        kept_slot = slot[keep]
        touched, first_at = np.unique(kept_slot, return_index=True)
        times = cols.t_ms[keep]
        rows = Rows(numbers[kept_slot], times, checked.values[keep], cols.stale[keep])
        series = None
        if len(slots.new):  # a new series' first sample is its first kept (none before it)
            first = np.zeros(len(slots.sids), np.int64)
            first[touched] = times[first_at]
            new = slots.new
            now_ms = int(self._clock() * 1000)
            series = series_table(
                project, slots.sids[new], slots.new_labels, first[new], numbers[new], now_ms
            )
        changed = {name: m for name, m in metadata.items() if self._meta.get((project, name)) != m}
        self._commit(project, series, rows, changed)
        metrics = series.column("metric").to_pylist() if series is not None else []
        known.remember(project, slots, numbers, touched, metrics)
        self._meta.update({(project, name): m for name, m in changed.items()})
        self._maintain()
        result.written, result.new_series = len(rows.ids), len(slots.new)
        if result.rejected["series_limit"]:
            result.warning = self._limit_warning(project)
        return result

    def _commit(
        self,
        project: str,
        series: pa.Table | None,
        samples: Rows,
        metadata: dict[str, Metadata],
    ) -> None:
        con = self._con
        try:
            con.execute("BEGIN TRANSACTION")
            if series is not None:
                self._insert("metric_series", series, con)
            pending = self._pending_from
            if len(samples.ids):
                self._insert("metric_samples", samples.table(("series_no", "t_ms", "value")), con)
                oldest = int(samples.t_ms.min())
                if pending is None or oldest < pending:  # else the file says so already
                    _metric_last.note_pending(con, oldest)
                    pending = oldest
            for name, m in metadata.items():
                con.execute(
                    "INSERT OR REPLACE INTO metric_metadata VALUES (?, ?, ?, ?, ?)",
                    [project, name, m.type, m.unit, m.help],
                )
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise StoreError(f"metric store write failed: {exc}") from exc
        self._pending_from = pending

    def maintain(self, *, idle: bool = False) -> None:
        """What the writer does besides writing, when it is due: each series' last sample
        to the file (once a second), a step of compaction (`_metric_chunks`). The writer
        calls it after each write, and when `idle` (then steps follow each other without
        the pause left for writes)."""
        with self._lock:
            self._maintain(idle=idle)

    def _maintain(self, *, idle: bool = False) -> None:
        now = self._clock()
        try:
            written = self._pending_from is not None  # samples since the last flush
            if written and now - self._flushed_at >= _FLUSH_LAST_S:
                self._flush_last()
            if now >= self._compact_at or (idle and self._compacting):
                self._compact_at = now + _COMPACT_IDLE_S
                self._compacting = self._compact_step(now) > 0
        except StoreError as exc:  # the samples are stored; the next time tries again
            log.error("%s", exc)

    def compaction_due(self) -> bool:
        """Whether a block that is over waits to be compacted (for /metrics; False when
        the file cannot say, closed or failing)."""
        try:
            with self._cursor() as cur:
                return _metric_chunks.block_due(cur, self._known.newest_ms()) is not None
        except (StoreError, duckdb.Error):
            return False

    def _compact_step(self, now: float) -> int:
        """A step of the oldest block that is over, if one is (`_metric_chunks`); the
        samples moved."""
        con = self._con
        try:
            end = _metric_chunks.block_due(con, self._known.newest_ms())
            if end is None:
                return 0
            if self._pending_from is not None:  # none moved may be needed to recover
                self._flush_last()
            con.execute("BEGIN TRANSACTION")
            moved = _metric_chunks.compact_step(con, end)
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise StoreError(f"metric store: compaction failed: {exc}") from exc
        self._compact_at = now + _COMPACT_BUSY_S  # more may be left
        return moved

    def compact(self) -> int:
        """Compact every block that is over, at once (the writer does it a step a second);
        the samples moved."""
        moved = 0
        with self._lock:
            while step := self._compact_step(self._clock()):
                moved += step
        return moved

    @staticmethod
    def _insert(table: str, rows: pa.Table, con: Any) -> None:
        con.register("_wk_rows", rows)
        con.execute(f"INSERT INTO {table} SELECT * FROM _wk_rows")
        con.unregister("_wk_rows")

    def _limit_warning(self, project: str) -> str:
        """Which metric and label fill the project's series (worked out once a minute)."""
        now = self._clock()
        if now - self._warned.get(project, -1e9) < _WARN_EVERY_S:
            return self.limit_warnings.get(project, "")
        self._warned[project] = now
        with self._cursor() as cur:
            top = cur.execute(
                "SELECT metric, count(*) FROM metric_series WHERE project = ? "
                "GROUP BY metric ORDER BY 2 DESC LIMIT 1",
                [project],
            ).fetchone()
            label = cur.execute(
                "SELECT k, count(DISTINCT v) FROM (SELECT unnest(map_keys(labels)) AS k, "
                "unnest(map_values(labels)) AS v FROM metric_series "
                "WHERE project = ? AND metric = ?) GROUP BY k ORDER BY 2 DESC LIMIT 1",
                [project, top[0] if top else ""],
            ).fetchone()
        text = (
            f"project {project!r} reached its limit of {self.max_series_per_project} series"
            " (metrics.max_series_per_project); new series are dropped"
        )
        if top:
            text += f"; {top[0]} has {top[1]} series"
        if label:
            text += f", its label {label[0]!r} has {label[1]} distinct values"
        log.warning("%s", text)
        self.limit_warnings[project] = text
        return text

    # --- reading ----------------------------------------------------------------------------

    def select(
        self, project: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Every series of the project the matchers select, with its samples in
        [start_ms, end_ms], in time order (series without samples there are left out)."""
        return self.select_block(project, matchers, start_ms, end_ms).split()

    def select_block(
        self, project: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> SampleBlock:
        """`select`'s samples as one `SampleBlock` (every series the matchers select, those
        without a sample in the range with none)."""
        with self._cursor() as cur:
            return read_block(cur, project, matchers, start_ms, end_ms)

    def series(
        self, project: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> list[dict[str, str]]:
        """The label sets of the series any matcher set selects with a sample in the range."""
        out: dict[int, dict[str, str]] = {}
        for matchers in matcher_sets:
            params: list[Any] = [project]
            where = where_sql(matchers, params)
            params.append(end_ms)
            with self._cursor() as cur:
                # Samples from first_ms to the last overlap the range (as Prometheus lists the
                # series whose chunks overlap it): the samples are not read. The last sample
                # is the writer's (the file's copy is flushed once a second).
                rows = cur.execute(
                    f"SELECT series_id, metric, labels FROM metric_series WHERE project = ? "
                    f"AND {where} AND first_ms <= ?",
                    params,
                ).fetchall()
            for sid, metric, labels in rows:
                last_ms = self._known.last_ms(sid)
                if last_ms is not None and last_ms >= start_ms:
                    out[sid] = {"__name__": metric, **dict(labels)}
        return sorted(out.values(), key=lambda d: sorted(d.items()))

    def label_names(
        self, project: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        """Label names in use (`__name__` included), sorted."""
        names = {k for s in self.series(project, matcher_sets or [[]], start_ms, end_ms) for k in s}
        return sorted(names)

    def label_values(
        self,
        project: str,
        name: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int,
        end_ms: int,
    ) -> list[str]:
        """The values one label takes, sorted."""
        found = self.series(project, matcher_sets or [[]], start_ms, end_ms)
        return sorted({s[name] for s in found if s.get(name)})

    def metadata(self, project: str) -> dict[str, Metadata]:
        """Each metric's type, unit and help, as last received."""
        known = list(self._meta.items())  # a copy: the writer thread adds to it
        return {m: meta for (p, m), meta in known if p == project}

    # --- retention ---------------------------------------------------------------------------

    def delete_before(self, cutoff_ms: int) -> tuple[int, int]:
        """Delete the samples older than `cutoff_ms`, and the series left without one (with
        their metadata when no series of the metric is left); (samples, series) deleted."""
        with self._lock:
            self._flush_last()  # which series are left without a sample: their last, current
            con = self._con
            try:
                con.execute("BEGIN TRANSACTION")
                samples = con.execute(
                    "DELETE FROM metric_samples WHERE t_ms < ?", [cutoff_ms]
                ).fetchone()
                compacted = _metric_chunks.delete_before(con, cutoff_ms)
                gone = con.execute(
                    "DELETE FROM metric_series WHERE last_ms < ? OR last_ms IS NULL "
                    "RETURNING series_id, project, metric",
                    [cutoff_ms],
                ).fetchall()
                con.execute(
                    "UPDATE metric_series SET first_ms = ? WHERE first_ms < ?",
                    [cutoff_ms, cutoff_ms],
                )
                self._forget(gone)
                con.execute(
                    "DELETE FROM metric_metadata WHERE (project, metric) NOT IN "
                    "(SELECT DISTINCT project, metric FROM metric_series)"
                )
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                self._reload()
                raise StoreError(f"metric retention failed: {exc}") from exc
        return (int(samples[0]) if samples else 0) + compacted, len(gone)

    def newest_ms(self) -> int | None:
        """The time of the newest sample stored (None: none), which retention counts from."""
        return self._known.newest_ms()

    def _forget(self, gone: Sequence[tuple[int, str, str]]) -> None:
        """The writer's state without the series deleted."""
        self._known.forget(gone)
        kept = self._known.metrics()
        for key in [k for k in self._meta if k not in kept]:
            del self._meta[key]

    def _reload(self) -> None:
        self._known.clear()
        self._meta.clear()
        self._load()

    def has_metric(self, project: str, name: str) -> bool:
        """Whether the project holds a series of the metric (no query: kept by the writer)."""
        return self._known.names.get(project, Counter())[name] > 0

    def stats(self) -> dict[str, int]:
        """Series per project (for /metrics and the UI)."""
        return dict(self._known.count)
