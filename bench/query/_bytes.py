"""Bytes per span on ClickHouse, by column, and column codecs tried on the same data.

`python -m bench.query --engine clickhouse --bytes` prints, for every table of the store,
each column's compressed and uncompressed bytes per span (`system.columns`, after merging
every part), then copies the newest `--trial-rows` spans into scratch tables that differ
only in their columns' codecs (the same ORDER BY, so the same neighbours for Delta and
friends) and prints each column's compressed bytes per span under each candidate. The
codecs in `_clickhouse_schema.py` were chosen from this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: Candidates per kind of column ("" is ClickHouse's default, LZ4).
INT_CODECS = ("", "ZSTD(1)", "ZSTD(3)", "Delta, ZSTD(1)", "DoubleDelta, ZSTD(1)", "T64, ZSTD(1)")
FLOAT_CODECS = ("", "ZSTD(1)", "ZSTD(3)", "Gorilla, ZSTD(1)", "FPC, ZSTD(1)")
STRING_CODECS = ("", "ZSTD(1)", "ZSTD(3)", "NONE")
#: Every candidate codec tried, in the order the table prints them.
TRIALS = tuple(dict.fromkeys(INT_CODECS + FLOAT_CODECS + STRING_CODECS))

#: Every part in the wide format (a file per column): small parts are compact, one file for
#: all columns, and `system.columns` has no per-column sizes for them.
WIDE = "min_bytes_for_wide_part = 0"

Rows = Callable[[str], Sequence[Sequence[Any]]]
Command = Callable[[str], object]


def _candidates(kind: str) -> tuple[str, ...]:
    base = kind.removeprefix("Nullable(").removeprefix("LowCardinality(")
    if base.startswith(("Int", "UInt")):
        return INT_CODECS
    if base.startswith("Float"):
        return FLOAT_CODECS
    return STRING_CODECS


def columns(rows: Rows, database: str, spans: int) -> list[tuple[str, str, str, float, float]]:
    """(table, column, type, compressed, uncompressed bytes per span) of every column."""
    out = []
    for table, name, kind, comp, raw in rows(
        "SELECT table, name, type, data_compressed_bytes, data_uncompressed_bytes "
        f"FROM system.columns WHERE database = '{database}' AND data_compressed_bytes > 0 "
        "ORDER BY table, position"
    ):
        out.append((str(table), str(name), str(kind), int(comp) / spans, int(raw) / spans))
    return out


def print_columns(cols: list[tuple[str, str, str, float, float]], codecs: dict[str, str]) -> None:
    """The per-column table, with per-table totals."""
    head = f"{'table.column':<34} {'type':<34} {'codec':<22}"
    print(f"\n{head} {'B/span':>8} {'raw B':>8} {'ratio':>6}")
    totals: dict[str, list[float]] = {}
    for table, name, kind, comp, raw in cols:
        t = totals.setdefault(table, [0.0, 0.0])
        t[0] += comp
        t[1] += raw
        codec = codecs.get(f"{table}.{name}", "") or "default (LZ4)"
        ratio = raw / comp if comp else 0.0
        head = f"{table + '.' + name:<34} {kind[:34]:<34} {codec[:22]:<22}"
        print(f"{head} {comp:>8.2f} {raw:>8.2f} {ratio:>6.1f}")
    for table, (comp, raw) in totals.items():
        print(f"{'total ' + table:<92} {comp:>8.2f} {raw:>8.2f} {raw / comp:>6.1f}")
    print(f"{'total, every table':<92} {sum(c for c, _ in totals.values()):>8.2f}")


def codecs_of(rows: Rows, database: str) -> dict[str, str]:
    """`table.column` -> the codec the store declared for it."""
    found = rows(
        f"SELECT table, name, compression_codec FROM system.columns WHERE database = '{database}'"
    )
    return {f"{t}.{n}": str(c).removeprefix("CODEC(").removesuffix(")") for t, n, c in found}


def trial(
    rows: Rows, command: Command, database: str, table: str, sample: int
) -> dict[str, dict[str, float]]:
    """Per column of `table`: compressed bytes per span under each candidate codec, measured
    on the newest `sample` rows copied into one scratch table per candidate."""
    ((create,),) = rows(f"SHOW CREATE TABLE {database}.{table}")
    described = rows(
        f"SELECT name, type FROM system.columns WHERE database = '{database}' "
        f"AND table = '{table}' ORDER BY position"
    )
    ((n,),) = rows(f"SELECT least(count(), {int(sample)}) FROM {database}.{table}")
    command(
        f"CREATE OR REPLACE TABLE {database}.codec_sample ENGINE = Memory AS SELECT * FROM "
        f"{database}.{table} ORDER BY start_ns DESC LIMIT {int(sample)}"
    )
    out: dict[str, dict[str, float]] = {name: {} for name, _ in described}
    try:
        for codec in TRIALS:
            if not any(codec in _candidates(str(kind)) for _, kind in described):
                continue  # no column of this table takes it (the floats' codecs on payloads)
            ddl = _with_codec(str(create), database, table, described, codec)
            command(f"DROP TABLE IF EXISTS {database}.codec_trial")
            command(ddl)
            command(f"ALTER TABLE {database}.codec_trial MODIFY SETTING {WIDE}")
            command(f"INSERT INTO {database}.codec_trial SELECT * FROM {database}.codec_sample")
            command(f"OPTIMIZE TABLE {database}.codec_trial FINAL")
            for name, kind, comp in rows(
                "SELECT name, type, data_compressed_bytes FROM system.columns "
                f"WHERE database = '{database}' AND table = 'codec_trial'"
            ):
                if codec in _candidates(str(kind)):  # else the column kept its default
                    out[str(name)][codec] = int(comp) / int(n)
    finally:
        command(f"DROP TABLE IF EXISTS {database}.codec_trial")
        command(f"DROP TABLE IF EXISTS {database}.codec_sample")
    return out


def _with_codec(
    create: str, database: str, table: str, described: Sequence[Sequence[Any]], codec: str
) -> str:
    """`table`'s DDL renamed `codec_trial`, every column that takes `codec` given it."""
    head, _, rest = create.partition("(")
    body, engine = _split_columns(rest)
    lines = []
    types = {str(n): str(t) for n, t in described}
    for part in body:
        name = part.strip().split(" ", 1)[0].strip("`")
        kind = types.get(name)
        if kind is None:  # an index or a projection
            lines.append(part)
            continue
        declared = f"{name} {kind}"
        if codec and codec in _candidates(kind):
            declared += f" CODEC({codec})"
        lines.append(declared)
    head = head.replace(f"{database}.{table}", f"{database}.codec_trial", 1)
    return f"{head}({', '.join(lines)}){engine}"


def _split_columns(rest: str) -> tuple[list[str], str]:
    """The column list of a CREATE TABLE (after its first '(') split at top-level commas,
    and what follows its closing ')'."""
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(rest):
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                parts.append(rest[start:i])
                return parts, rest[i + 1 :]
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(rest[start:i])
            start = i + 1
    raise ValueError("unbalanced CREATE TABLE")


def print_trial(table: str, sizes: dict[str, dict[str, float]], kinds: dict[str, str]) -> None:
    """Each column's bytes per span under each candidate; the smallest marked *."""
    print(f"\ncodecs tried on {table} (compressed bytes per row of the table; * the smallest):")
    names = [c or "LZ4" for c in TRIALS]
    print(f"{'column':<22}" + "".join(f"{n[:14]:>15}" for n in names))
    for col, by in sizes.items():
        usable = {c: v for c, v in by.items() if c in _candidates(kinds[col])}
        best = min(usable, key=lambda c: usable[c]) if usable else None
        cells = []
        for codec in TRIALS:
            v = by.get(codec) if codec in usable else None
            mark = "*" if codec == best else " "
            cells.append(f"{'-' if v is None else f'{v:.3f}'}{mark}".rjust(15))
        print(f"{col:<22}" + "".join(cells))


def distinct_payloads(n: int, seed: int = 11) -> tuple[list[bytes], list[bytes]]:
    """`n` distinct (io, meta) blobs compressed per span as the store's codec does: the
    benchmark's payloads reuse a pool of documents, which flatters a second compression."""
    import numpy as np

    from watchkeeper.model import PayloadRow
    from watchkeeper.store._payload import PayloadCodec

    rng, codec = np.random.default_rng(seed), PayloadCodec()
    words = np.array(WORDS)
    io, meta = [], []
    for i in range(n):
        prompt = " ".join(rng.choice(words, int(rng.integers(150, 450))))
        answer = " ".join(rng.choice(words, int(rng.integers(30, 150))))
        attrs = (
            f'{{"gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":{rng.integers(1e4)},'
            f'"gen_ai.response.id":"chatcmpl-{rng.bytes(12).hex()}","user.id":"user-{i % 997}",'
            f'"session.id":"s-{rng.integers(1e6)}","http.route":"/v1/chat"}}'
        )
        p = PayloadRow("bench", "t", "s", 0, input=prompt, output=answer, attributes=attrs)
        io.append(codec.io(p) or b"")
        meta.append(codec.meta(p))
    return io, meta


WORDS = tuple(
    [
        "the",
        "customer",
        "asked",
        "about",
        "refund",
        "policy",
        "order",
        "shipping",
        "invoice",
        "account",
        "password",
        "reset",
        "delivery",
        "late",
        "broken",
        "item",
        "warranty",
        "please",
        "help",
        "thanks",
        "answer",
        "explain",
        "tool",
        "call",
        "result",
        "search",
        "retrieved",
        "documents",
        "context",
        "system",
        "assistant",
        "user",
        "you",
        "are",
        "a",
        "helpful",
        "agent",
    ]
)


def payload_trial(
    rows: Rows, command: Command, insert: Callable[[str, Any], object], database: str, n: int
) -> dict[str, tuple[float, float, float]]:
    """Per string codec: (io, meta) stored bytes per blob of `n` distinct compressed blobs,
    and the blobs' own size (what NONE stores)."""
    import pyarrow as pa

    io, meta = distinct_payloads(n)
    data = pa.table({"i": pa.array(range(n), pa.uint32()), "io": pa.array(io, pa.binary()),
                     "meta": pa.array(meta, pa.binary())})  # fmt: skip
    raw = sum(map(len, io)) / n, sum(map(len, meta)) / n
    out: dict[str, tuple[float, float, float]] = {}
    try:
        for codec in STRING_CODECS:
            clause = f" CODEC({codec})" if codec else ""
            command(f"DROP TABLE IF EXISTS {database}.codec_blobs")
            command(
                f"CREATE TABLE {database}.codec_blobs (i UInt32, io String{clause}, "
                f"meta String{clause}) ENGINE = MergeTree ORDER BY i SETTINGS {WIDE}"
            )
            insert(f"{database}.codec_blobs", data)
            command(f"OPTIMIZE TABLE {database}.codec_blobs FINAL")
            sizes = dict(
                rows(
                    "SELECT name, data_compressed_bytes FROM system.columns "
                    f"WHERE database = '{database}' AND table = 'codec_blobs'"
                )
            )
            out[codec or "LZ4"] = (int(sizes["io"]) / n, int(sizes["meta"]) / n, raw[0] + raw[1])
    finally:
        command(f"DROP TABLE IF EXISTS {database}.codec_blobs")
    return out


def print_payload_trial(sizes: dict[str, tuple[float, float, float]], n: int) -> None:
    """The payload blobs' stored bytes under each codec."""
    print(f"\npayload blobs, {n:,} distinct documents compressed per span (zstd 3) first:")
    print(f"{'codec':<10} {'io B/blob':>10} {'meta B/blob':>12}")
    for codec, (io, meta, _) in sizes.items():
        print(f"{codec:<10} {io:>10.1f} {meta:>12.1f}")
