"""The DuckDB log store's blocks: records numbered into blocks, and each block's word filter.

A write's new records are sorted by project and time and cut into blocks of at most
`BLOCK_RECORDS` (`numbered`); each block gets a row in `log_blocks`: its project, time range,
record count and a Bloom filter of the words of its bodies, 16,384 bits in `WORDS` UBIGINT
columns, `HASHES` bits per word (`filters`).

The words and their bits are computed by the engine (`bits_sql`): the writer's Python only
builds Arrow and numpy arrays of whole batches, so the writer thread holds the interpreter's
lock for ~1 µs a record instead of the ~10 µs the per-word Python filter took, and leaves
the rest to DuckDB's threads (`python -m bench.logs`). A search takes its words through the
same SQL (`DuckDBLogStore.masks`), so the filter and the search split and fold alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WORDS = 256  # UBIGINT columns of a block's filter
BITS = WORDS * 64
HASHES = 3  # bits per word
#: Records per block at most: ~25 distinct words a record (an id among them) set about a
#: third of a filter's bits at 512 (a false positive 1 word in 30); a write of more records
#: makes several blocks (`python -m bench.logs`).
BLOCK_RECORDS = 512


def words_sql(text: str) -> str:
    """The SQL list of the words of `text` (a SQL expression) as the filter holds them:
    runs of letters, digits and underscores (what `logs.words` finds and the match's RE2
    edges bound), folded by `lower(upper())` so every case variant of a word (a final sigma
    too) is one word."""
    return rf"regexp_extract_all(lower(upper({text})), '[\pL\pN_]+')"


#: The filter bits of a word whose MD5 is `h` (`md5_number`, 128 bits), `i` = 0..HASHES-1:
#: its two halves combined (Kirsch-Mitzenmacher; masks, not `%`: a 128-bit modulo cost 10x
#: the rest of the filter). MD5, not DuckDB's `hash`: it must not change with the engine's
#: version, or the filters written before would stop finding their words.
BIT_SQL = f"((h & {BITS - 1})::BIGINT + i * (((h >> 64) & {BITS - 1})::BIGINT | 1)) & {BITS - 1}"


def bits_sql(source: str) -> str:
    """(block, filter column, its bits) of the records of `source` (a table, or a table
    and its WHERE clause): every distinct word of a block's bodies, hashed. (The shift is
    of two UBIGINTs: with a BIGINT distance DuckDB widens it to HUGEINT, and the numpy
    fetch of that is a float, which loses the low bits of a filter word.)"""
    return f"""
WITH words AS (SELECT DISTINCT block, unnest({words_sql("body")}) AS w FROM {source}),
bits AS (
    SELECT DISTINCT block, {BIT_SQL} AS bit
    FROM (SELECT block, md5_number(w) AS h FROM words), range({HASHES}) AS r(i)
)
SELECT block, bit // 64 AS col, bit_or(1::UBIGINT << (bit % 64)::UBIGINT) AS v
FROM bits GROUP BY ALL
"""


def filters_sql(first_block: int) -> str:
    """The `log_blocks` rows of the stored blocks from `first_block` on, in SQL alone (a
    migration's; a write pivots `bits_sql` itself: binding this costs ~15 ms a statement)."""
    pivot = ", ".join(str(i) for i in range(WORDS))
    columns = ", ".join(f'coalesce(f."{i}", 0)::UBIGINT' for i in range(WORDS))
    source = f"logs WHERE block >= {int(first_block)}"
    return f"""
SELECT b.block, b.project, b.min_ns, b.max_ns, b.records, {columns}
FROM (SELECT block, any_value(project) AS project, min(time_ns) AS min_ns,
             max(time_ns) AS max_ns, count(*)::INTEGER AS records FROM {source} GROUP BY block) b
LEFT JOIN (PIVOT ({bits_sql(source)}) ON col IN ({pivot}) USING first(v) GROUP BY block) f
    USING (block)
ORDER BY b.block
"""


def numbered(table: pa.Table, first_block: int) -> pa.Table:
    """The records sorted by project and time, with a `block` column first: each project's
    records in blocks of `BLOCK_RECORDS` at most, numbered from `first_block` on."""
    table = table.sort_by([("project", "ascending"), ("time_ns", "ascending")])
    n = table.num_rows
    project = pc.dictionary_encode(table["project"]).combine_chunks().indices.to_numpy()
    starts = np.flatnonzero(np.diff(project, prepend=-1))  # each project's first record
    within = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    block = first_block + np.cumsum(within % BLOCK_RECORDS == 0) - 1
    return table.add_column(0, "block", pa.array(block, pa.int64()))


def filters(table: pa.Table, bits: dict[str, Any]) -> pa.Table:
    """The `log_blocks` rows of `numbered` records, given their blocks' bits (`bits_sql`,
    as numpy arrays): the bits pivoted into one column of `WORDS` each."""
    block = table["block"].to_numpy()
    starts = np.flatnonzero(np.diff(block, prepend=block[0] - 1))
    ends = np.append(starts[1:], len(block))
    times = table["time_ns"].to_numpy()
    first = int(block[0])
    words = np.zeros((WORDS, len(starts)), np.uint64)
    words[bits["col"], bits["block"] - first] = bits["v"]
    return pa.table(
        {
            "block": pa.array(block[starts]),
            "project": table["project"].take(pa.array(starts)),
            "min_ns": pa.array(times[starts]),  # sorted by time within a block
            "max_ns": pa.array(times[ends - 1]),
            "records": pa.array(ends - starts, pa.int32()),
        }
        | {f"b{i}": pa.array(words[i]) for i in range(WORDS)}
    )
