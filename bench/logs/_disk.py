"""Where a DuckDB log store's bytes go: each column's share of the file, and its free blocks.

DuckDB's `pragma_storage_info` lists every column segment with the block it lies in and its
offset there, not its size; a segment's size is taken as the distance to the next segment
of the same block (the last one: to the block's end, so a block's unused tail counts for
the column that ends it), plus the whole blocks it spills into (`additional_block_ids`,
long strings). `pragma database_size` gives the blocks in use; the rest of the file is free
blocks (left by checkpoints that rewrote a row group) and headers. The word filters' 256
columns are summed. Read after the server stopped: DuckDB locks its file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb

TABLES = ("logs", "log_blocks")


def breakdown(path: Path) -> tuple[int, dict[str, float], dict[str, str], dict[str, int]]:
    """(records, bytes by `table.column`, compression by `table.column`, the file's
    `total`/`used`/`free` bytes and `block` size)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        ((records,),) = con.execute("SELECT count(*) FROM logs").fetchall()
        size = con.execute(
            "SELECT block_size, total_blocks, used_blocks, free_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()"
        ).fetchall()[0]
        segments = []
        for table in TABLES:
            segments += [
                (f"{table}.{col}", comp, block, offset, extra)
                for col, comp, block, offset, extra in con.execute(
                    "SELECT column_name, compression, block_id, block_offset, "
                    f"additional_block_ids FROM pragma_storage_info('{table}') "
                    "WHERE persistent AND block_id >= 0"
                ).fetchall()
            ]
    finally:
        con.close()
    block_size = int(size[0])
    by_block: dict[int, list[tuple[int, str]]] = defaultdict(list)
    bytes_of: dict[str, float] = defaultdict(float)
    kinds: dict[str, set[str]] = defaultdict(set)
    for name, comp, block, offset, extra in segments:
        by_block[block].append((offset, name))
        bytes_of[name] += block_size * len(extra or ())
        kinds[name].add(comp)
    for parts in by_block.values():
        parts.sort()
        ends = [o for o, _ in parts[1:]] + [block_size]
        for (offset, name), end in zip(parts, ends, strict=True):
            bytes_of[name] += end - offset
    files = {
        "block": block_size,
        "total": block_size * int(size[1]),
        "used": block_size * int(size[2]),
        "free": block_size * int(size[3]),
    }
    return int(records), dict(bytes_of), {k: "/".join(sorted(v)) for k, v in kinds.items()}, files


def report(path: Path) -> list[str]:
    """Lines for the benchmark's output: bytes per record by column, largest first."""
    records, bytes_of, kinds, files = breakdown(path)
    n = max(records, 1)
    size = path.stat().st_size  # the blocks DuckDB counts may pass the file's truncated end
    free = max(size - files["used"], 0)
    lines = [
        f"  file {size / n:.1f} bytes/record: blocks in use {files['used'] / n:.1f}, "
        f"the rest {free / n:.1f} ({free / max(size, 1):.0%} of the file: free blocks, headers)"
    ]
    filters = sum(v for k, v in bytes_of.items() if k.startswith("log_blocks.b"))
    lines.append(f"  {'log_blocks.b0..b255':28}{filters / n:7.2f} bytes/record  (the word filters)")
    for name, used in sorted(bytes_of.items(), key=lambda kv: -kv[1]):
        if used / n >= 0.05 and not name.startswith("log_blocks.b"):
            lines.append(f"  {name:28}{used / n:7.2f} bytes/record  {kinds[name]}")
    return lines
