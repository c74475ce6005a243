"""The rollups as the DuckDB span store writes them: each batch appends partial rows of its
spans, and every `COMPACT_EVERY` writes the partial rows of the hours (minutes) written
meanwhile are merged; retention cuts them at its cutoff. `_rollup` says what the tables
hold, `_rollup_query` what they answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watchkeeper.store import _rollup as ru
from watchkeeper.store._timed import Timer

#: Writes between two merges of the rollup's partial rows (one set per batch) of the hours
#: written meanwhile; merging keeps the rollup small when batches are small and frequent.
COMPACT_EVERY = 100


class RollupWriter:
    """The hours and minutes written since the last merge, and the writes that merge them.
    Used by the store's writer only (under its write lock)."""

    def __init__(self, clock: Callable[[], int], compact_every: int = COMPACT_EVERY) -> None:
        self._clock = clock
        self._compact_every = compact_every
        self._dirty_hours: set[int] = set()
        self._dirty_minutes: set[int] = set()
        self._fixed_hours: set[int] = set()  # hours whose spans trace contexts moved
        self._writes = 0

    def append(self, cur: Any, source: str, fixed: set[int], timer: Timer) -> None:
        """Append the partial rollup rows of the new spans in `source`; now and then merge
        the partial rows (`fixed`: hours whose rows trace contexts moved)."""
        with timer("rollups"):
            for table in ru.TABLES:
                cur.execute(ru.insert_sql(source, table=table))
            kept = self._clock() - ru.MINUTE_KEEP_NS  # older minutes are pruned anyway
            cur.execute(ru.insert_sql(source, f"start_ns >= {kept}", ru.MINUTES))
            minutes = cur.execute(f"SELECT DISTINCT {ru.MINUTES.time_sql()} FROM {source}")
            for (minute,) in minutes.fetchall():
                self._dirty_hours.add(minute // ru.HOUR_NS * ru.HOUR_NS)
                if minute >= kept // ru.MINUTE_NS * ru.MINUTE_NS:
                    self._dirty_minutes.add(minute)
        self._fixed_hours.update(fixed)
        self._writes += 1
        if self._writes % self._compact_every == 0:
            with timer("merge"):
                self._merge(cur)

    def _merge(self, cur: Any) -> None:
        """Merge the partial rollup rows of the hours (minutes) written since the last merge."""
        self._compact_minutes(cur)
        for table in ru.TABLES:
            # rows moved between users or features: rebuilt, so the min, max, first and last
            # of the key they left are exact again (an hour's spans, scanned once per merge)
            rebuild = self._fixed_hours if table in ru.CONTEXT_TABLES else set()
            merge = sorted(self._dirty_hours - rebuild)
            sqls = (ru.compact_sql(merge, table) if merge else ()) + (
                ru.rebuild_sql(sorted(rebuild), table) if rebuild else ()
            )
            for sql in sqls:
                cur.execute(sql)
        self._dirty_hours.clear()
        self._fixed_hours.clear()

    def _compact_minutes(self, cur: Any) -> None:
        """Merge the partial per-minute rows of the minutes written since the last merge,
        and drop the minutes past the horizon."""
        if self._dirty_minutes:
            for sql in ru.compact_sql(sorted(self._dirty_minutes), ru.MINUTES):
                cur.execute(sql)
            self._dirty_minutes.clear()
        kept = self._clock() - ru.MINUTE_KEEP_NS
        cur.execute(f"DELETE FROM {ru.MINUTES.name} WHERE minute_ns < {kept}")

    @staticmethod
    def cut(cur: Any, where: str, params: dict[str, object], before_ns: int) -> None:
        """Drop the rollups' hours (minutes) before the cut; the one it cuts is rebuilt from
        its spans."""
        for table in (*ru.TABLES, ru.MINUTES):
            t, grain = table.time_key, table.grain_ns
            cut = before_ns // grain * grain
            bind = {k: v for k, v in params.items() if k != "t"} | {"h": cut}
            cur.execute(f"DELETE FROM {table.name} WHERE {where}{t} < $h", bind)
            if cut < before_ns:
                cur.execute(f"DELETE FROM {table.name} WHERE {where}{t} = $h", bind)
                cond = f"{where}start_ns >= $h AND start_ns < $e"
                insert = ru.insert_sql("spans", cond, table)
                cur.execute(insert, bind | {"e": cut + grain})
