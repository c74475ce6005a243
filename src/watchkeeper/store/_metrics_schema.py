"""The DuckDB schema of the metric store (its own file: see `watchkeeper.store.metrics`).

Ordered migrations recorded in `schema_version`, as the span store's are; never edit a
released step, append one.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.store import _duckdb_schema, _metric_chunks

#: (version, what it does, statements).
MIGRATIONS: _duckdb_schema.Migrations = (
    (
        1,
        "metric series (labels apart), samples keyed by series id, metric metadata",
        (
            # A series id is a hash of (project, labels): the writer needs no lookup to
            # know it, and a replayed request lands on the same ids.
            "CREATE TABLE metric_series (series_id BIGINT PRIMARY KEY, project VARCHAR NOT NULL, "
            "metric VARCHAR NOT NULL, labels MAP(VARCHAR, VARCHAR) NOT NULL, "
            "created_ms BIGINT NOT NULL)",
            # Narrow and appended in arrival order (close to time order), so DuckDB's per
            # row group min/max on t_ms skips what a time range does not need. A NULL value
            # is a staleness marker.
            "CREATE TABLE metric_samples (series_id BIGINT NOT NULL, t_ms BIGINT NOT NULL, "
            "value DOUBLE)",
            "CREATE TABLE metric_metadata (project VARCHAR NOT NULL, metric VARCHAR NOT NULL, "
            "type VARCHAR NOT NULL, unit VARCHAR NOT NULL, help VARCHAR NOT NULL, "
            "PRIMARY KEY (project, metric))",
        ),
    ),
    (
        2,
        "each series' first and last sample time and last value (series_last)",
        (
            # Kept by the writer (since version 3, flushed once a second), so listing
            # series and labels, retention and a restart never scan the samples.
            "ALTER TABLE metric_series ADD COLUMN first_ms BIGINT",
            "ALTER TABLE metric_series ADD COLUMN last_ms BIGINT",
            "ALTER TABLE metric_series ADD COLUMN last_value DOUBLE",
            "UPDATE metric_series SET first_ms = m.f, last_ms = m.l, last_value = m.v FROM "
            "(SELECT series_id, min(t_ms) AS f, max(t_ms) AS l, arg_max_null(value, t_ms) AS v "
            "FROM metric_samples GROUP BY series_id) m WHERE metric_series.series_id = m.series_id",
        ),
    ),
    (
        3,
        "the oldest sample written since each series' last was last flushed (metric_writer)",
        (
            # Each series' last in metric_series is flushed once a second rather than in
            # every write; this says from when to read the samples again after a crash
            # (see watchkeeper.store._metric_last).
            "CREATE TABLE metric_writer (pending_from_ms BIGINT)",
            "INSERT INTO metric_writer VALUES (NULL)",
        ),
    ),
    (
        4,
        "samples keyed by a series number (metric_series.series_no) instead of the 64-bit id",
        (
            # The id is a hash: DuckDB stored it uncompressed, 8.6 of the 16-19 bytes a
            # sample took. A number given in order of creation (dense from 0, never two
            # series at once) bit-packs to a few bits or none when the writer appends a
            # round of series in the same order each time.
            "ALTER TABLE metric_series ADD COLUMN series_no BIGINT",
            "UPDATE metric_series SET series_no = n.no FROM (SELECT series_id, "
            "row_number() OVER (ORDER BY created_ms, series_id) - 1 AS no FROM metric_series) n "
            "WHERE metric_series.series_id = n.series_id",
            "CREATE TABLE metric_samples_4 (series_no BIGINT NOT NULL, t_ms BIGINT NOT NULL, "
            "value DOUBLE)",
            "INSERT INTO metric_samples_4 SELECT s.series_no, m.t_ms, m.value "
            "FROM metric_samples m JOIN metric_series s USING (series_id) "
            "ORDER BY m.t_ms, s.series_no",
            "DROP TABLE metric_samples",
            "ALTER TABLE metric_samples_4 RENAME TO metric_samples",
        ),
    ),
    (
        5,
        "the series table without a primary key (the writer knows every series of its file)",
        (
            # A new series is inserted only when the writer, which loads every series of
            # the file when it opens it, does not know it: the key's index checked nothing
            # and cost 6 of the ~12 us of CPU a new series took (2,000-series writes).
            "CREATE TABLE metric_series_5 (series_id BIGINT NOT NULL, project VARCHAR NOT NULL, "
            "metric VARCHAR NOT NULL, labels MAP(VARCHAR, VARCHAR) NOT NULL, "
            "created_ms BIGINT NOT NULL, first_ms BIGINT, last_ms BIGINT, last_value DOUBLE, "
            "series_no BIGINT)",
            "INSERT INTO metric_series_5 SELECT series_id, project, metric, labels, created_ms, "
            "first_ms, last_ms, last_value, series_no FROM metric_series ORDER BY series_no",
            "DROP TABLE metric_series",
            "ALTER TABLE metric_series_5 RENAME TO metric_series",
        ),
    ),
    (
        6,
        "chunks of closed time blocks, per series (metric_chunks)",
        # Filled by the writer's compaction from metric_samples (`_metric_chunks`): a file
        # of an older version gets its samples moved there as its writer runs.
        (_metric_chunks.DDL,),
    ),
)
LATEST = MIGRATIONS[-1][0]


def migrate(con: Any) -> int:
    """Apply every step above the file's version; return the new version."""
    return _duckdb_schema.migrate(con, steps=MIGRATIONS)
