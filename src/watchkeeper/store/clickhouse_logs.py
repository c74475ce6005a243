"""The log store on ClickHouse: the span store's server (or chDB engine), one `logs` table
(the reads are `logs.SqlLogStore`'s; this module holds the connection, the DDL, the Arrow
insert, the text access path and the dialect's spellings).

**Layout.** `ReplacingMergeTree` partitioned by UTC day (retention drops whole days by TTL),
ordered by (project, hour, service, severity, time, id): every query names one project and a
time range (the hour prunes it to whole granules), the Logs page and the alert rules filter by
service, and "severity >= error" is then a range inside each hour and service; the key ends
in the record's id, so copies of one record (two replicas writing the same replay) collapse
on merge. Bodies, attributes and resources are ZSTD-compressed (`CODECS`, measured by
`python -m bench.log_store`); trace ids have a Bloom filter ("logs of this trace").
The table keeps its own schema versions (`log_schema_version`), apart from the spans'.

**Text access path.** A `text` index (ClickHouse's inverted index) on the bodies' words:
the body lower-cased, every run of non-word characters made one space, so the index holds
exactly the words `logs.words` sees (an underscore splits the index's tokens: `x_y` is
looked up as `x` and `y`, then matched whole by the RE2 pattern). A search asks `hasToken`
of every word (the index answers it without reading the bodies) and matches the phrases on
the rows left. On 200k records (`bench.log_store`) a rare word read 32,768 rows of 200,000
(42 ms; a `tokenbf_v1` filter: 49,152 rows, 100 ms; no index: every row, 402 ms) for 21
index bytes per record (the Bloom filter: 1); a word in 2% of the records is in every
granule, yet answered in 144 ms against 420.

**Re-delivery.** Under the one writer lock, the ids of a batch already stored (in its time
range) are left out before the insert, as the span store does: reads stay exact without
`FINAL`. With chDB every call takes the process's engine lock (`clickhouse._EMBEDDED`).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pyarrow as pa

from watchkeeper.errors import StoreError
from watchkeeper.model import LogRow
from watchkeeper.store._dialect import CLICKHOUSE, Params
from watchkeeper.store.clickhouse import _EMBEDDED, SETTINGS, _connect, _is_data_error
from watchkeeper.store.logs import COLUMNS, LogFilter, SqlLogStore, columns

#: The words of a body as `logs.words` sees them, spaced for the index's tokenizer; the
#: index and every search spell it alike (ClickHouse matches the index by its expression).
WORDS_EXPR = r"replaceRegexpAll(lowerUTF8(body), '[^\\pL\\pN]+', ' ')"
_TYPES = {
    "project": "LowCardinality(String)",
    "log_id": "String",
    "time_ns": "Int64",
    "observed_ns": "Int64",
    "severity_number": "UInt8",
    "severity_text": "LowCardinality(String)",
    "service": "LowCardinality(String)",
    "environment": "LowCardinality(String)",
    "host": "LowCardinality(String)",
    "scope": "LowCardinality(String)",
    "event_name": "LowCardinality(String)",
}
#: Column codecs (`python -m bench.log_store`, 200k records, docs/clickhouse.md): times by
#: delta (sorted within a part); text by ZSTD(1), half LZ4's bytes (body 26.3 against 47.3
#: bytes per record, attributes 28.2 against 55.5); ZSTD(3) was no smaller on bodies and
#: attributes, ZSTD(6) 5% smaller at several times the CPU; ZSTD(3) only on the resources
#: (0.7 against 1.0: the same few documents over and over).
CODECS = {
    "time_ns": "Delta, ZSTD(1)",
    "observed_ns": "Delta, ZSTD(1)",
    "severity_number": "T64, ZSTD(1)",
    "resource": "ZSTD(3)",
}
_SECONDS = "toDateTime(intDiv(time_ns, 1000000000), 'UTC')"
INDEXES = (
    f"INDEX body_words {WORDS_EXPR} TYPE text(tokenizer = splitByNonAlpha)",
    "INDEX trace_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1",
)


def table_ddl(indexes: Sequence[str] = INDEXES, codecs: dict[str, str] = CODECS) -> str:
    """The `logs` table (the bench measures other indexes and codecs through it)."""
    cols = [
        f"{n} {_TYPES.get(n, 'String')} CODEC({codecs.get(n, 'ZSTD(1)')})"
        if "LowCardinality" not in _TYPES.get(n, "")
        else f"{n} {_TYPES[n]}"
        for n in COLUMNS
    ]
    return (
        f"CREATE TABLE IF NOT EXISTS logs ({', '.join([*cols, *indexes])}) "
        f"ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD({_SECONDS}) "
        "ORDER BY (project, intDiv(time_ns, 3600000000000), service, severity_number, "
        "time_ns, log_id) SETTINGS ttl_only_drop_parts = 1"
    )


VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS log_schema_version (version UInt32, description String, "
    "applied_ns Int64) ENGINE = MergeTree ORDER BY version"
)
#: (version, what it does, statements); the log table's versions apart from the spans'.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "log records, a text index on their words", (table_ddl(),)),
)
LATEST = MIGRATIONS[-1][0]


def ttl_statements(days: int) -> list[str]:
    """Keep `days` days of records (whole days dropped as they expire)."""
    return [f"ALTER TABLE logs MODIFY TTL {_SECONDS} + INTERVAL {int(days)} DAY"]


def schema_statements(cluster: str | None = None, ttl_days: int | None = None) -> list[str]:
    """The log table's DDL: as the store creates it, or for a named cluster (a
    `ReplicatedReplacingMergeTree` `logs_local` on every node and a `Distributed` `logs`
    over them, sharded by record id so copies of a record meet on one shard)."""
    ttl = ttl_statements(ttl_days) if ttl_days is not None else []
    if cluster is None:
        return [VERSION_DDL, table_ddl(), *ttl]
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", cluster):
        raise ValueError(f"cluster name {cluster!r}: use letters, digits, _ . and -")
    on = f"ON CLUSTER `{cluster}`"
    path = "'/clickhouse/tables/{shard}/{database}/logs_local', '{replica}'"
    local = table_ddl().replace("CREATE TABLE IF NOT EXISTS logs (",
                                f"CREATE TABLE IF NOT EXISTS logs_local {on} (", 1)  # fmt: skip
    local = local.replace(
        "ENGINE = ReplacingMergeTree ", f"ENGINE = ReplicatedReplacingMergeTree({path}) "
    )
    return [
        VERSION_DDL.replace(" (", f" {on} (", 1),
        local,
        f"CREATE TABLE IF NOT EXISTS logs {on} AS logs_local ENGINE = "
        f"Distributed('{cluster}', currentDatabase(), 'logs_local', cityHash64(log_id))",
        *(s.replace("ALTER TABLE logs ", f"ALTER TABLE logs_local {on} ", 1) for s in ttl),
    ]


def _table(rows: Sequence[LogRow]) -> pa.Table:
    ints = {"time_ns", "observed_ns"}
    return pa.table({
        n: pa.array(v, pa.int64() if n in ints else pa.uint8() if n == "severity_number"
                    else pa.string())
        for n, v in columns(rows).items()
    })  # fmt: skip


class ClickHouseLogStore(SqlLogStore):
    """Log records in the `logs` table of a ClickHouse database (`chdb:///PATH`: in-process)."""

    dialect = CLICKHOUSE

    def __init__(
        self, url: str, *, database: str = "watchkeeper", ttl_days: int | None = None
    ) -> None:
        self._client = _connect(url, database)
        self._embedded = url.startswith("chdb://")
        self._lock = threading.Lock()  # one writer: the key check needs it (and chDB)
        try:
            self.version = self._migrate()
            for sql in ttl_statements(ttl_days) if ttl_days is not None else ():
                self._command(sql)
        except BaseException:
            self.close()
            raise

    def _calling(self) -> AbstractContextManager[object]:
        """Serialize the call when the engine is in-process (one chDB session)."""
        return _EMBEDDED if self._embedded else nullcontext()

    def _command(self, sql: str, params: dict[str, object] | None = None) -> None:
        try:
            with self._calling():
                self._client.command(sql, parameters=params, settings=SETTINGS)
        except Exception as exc:
            raise StoreError(f"log store: {exc}") from exc

    def _migrate(self) -> int:
        self._command(VERSION_DDL)
        ((version,),) = self._rows("SELECT max(version) FROM log_schema_version", {})
        version = int(version or 0)
        if version > LATEST:
            raise StoreError(
                f"this ClickHouse database holds log store schema version {version}, made by "
                f"a newer watchkeeper; this one knows versions up to {LATEST}: upgrade it"
            )
        for step, description, statements in MIGRATIONS:
            if version < step:
                for sql in statements:
                    self._command(sql)
                p = Params(CLICKHOUSE)
                self._command(
                    "INSERT INTO log_schema_version VALUES "
                    f"({p(step)}, {p(description)}, {p(time.time_ns())})",
                    p.values,
                )
                version = step
        return version

    def close(self) -> None:
        """Release the client (chDB: the engine's files once every client is closed)."""
        with self._lock, self._calling(), contextlib.suppress(Exception):
            self._client.close()

    # --- the engine's part of the reads -----------------------------------------------------

    def _rows(self, sql: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
        try:
            with self._calling():
                result = self._client.query(sql, parameters=params, settings=SETTINGS)
        except Exception as exc:
            raise StoreError(f"log store query failed: {exc}") from exc
        return [tuple(row) for row in result.result_rows]

    def _regex(self, column: str, pattern: str) -> str:
        return f"match({column}, {pattern})"

    def _attribute_is(self, key: str, value: str, p: Params) -> str:
        k = p(key)
        text = (
            f"if(JSONType(attributes, {k}) = 'String', JSONExtractString(attributes, {k}), "
            f"JSONExtractRaw(attributes, {k}))"
        )
        return f"(JSONHas(attributes, {k}) AND {text} = {p(value)})"

    def _text_where(self, f: LogFilter, p: Params) -> list[str]:
        assert f.text is not None
        tokens = dict.fromkeys(t for w in f.text.all_words() for t in w.split("_") if t)
        return [f"hasToken({WORDS_EXPR}, {p(t)})" for t in tokens]

    # --- writes -----------------------------------------------------------------------------

    def _stored(self, rows: Sequence[LogRow]) -> set[tuple[str, str]]:
        """(project, id) of the batch's records already stored; its time range bounds it."""
        p = Params(CLICKHOUSE)
        lo, hi = min(r.time_ns for r in rows), max(r.time_ns for r in rows)
        projects = sorted({r.project for r in rows})
        ids = sorted({r.log_id for r in rows})
        sql = (
            f"SELECT project, log_id FROM logs WHERE project IN {p.many(projects)} "
            f"AND time_ns BETWEEN {p(lo)} AND {p(hi)} AND has({p(ids)}, log_id)"
        )
        return {(str(a), str(b)) for a, b in self._rows(sql, p.values)}

    def write(self, rows: Sequence[LogRow]) -> int:
        """Store the records not stored yet (by project and `log_id`); return how many were
        new. A batch the engine cannot take for its values raises that error (not a
        StoreError), so the ingest writer sets it aside instead of retrying it forever."""
        unique = list({(r.project, r.log_id): r for r in reversed(rows)}.values())[::-1]
        if not unique:
            return 0
        with self._lock:
            old = self._stored(unique)
            new = [r for r in unique if (r.project, r.log_id) not in old]
            if not new:
                return 0
            try:
                data = _table(new)
                with self._calling():
                    self._client.insert_arrow("logs", data, settings=SETTINGS)
            except Exception as exc:
                if _is_data_error(exc):
                    raise
                raise StoreError(f"log store write failed: {exc}") from exc
        return len(new)

    def delete_before(self, project: str | None, before_ns: int) -> int:
        """Drop records older than `before_ns` (of one project, or all): a lightweight
        delete; the TTL drops whole days on its own."""
        p = Params(CLICKHOUSE)
        where = f"time_ns < {p(before_ns)}" + (
            "" if project is None else f" AND project = {p(project)}"
        )
        with self._lock:
            ((n,),) = self._rows(f"SELECT count() FROM logs WHERE {where}", p.values)
            if n:
                self._command(f"DELETE FROM logs WHERE {where}", p.values)
        return int(n)
