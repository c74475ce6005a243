"""Payload codec: prompts/completions and the JSON documents of each span.

Text (`io`: input and output) and the rest (`meta`: attributes, resource, events, links,
status message) are separate blobs, so a text search reads only the text. Each is the JSON
list itself when it is short (`RAW_MAX`), a zstd frame of it when longer; its first bytes
tell which (zstd frames begin with its magic number, a JSON list with `[`). Blobs written
before, when every `io` was a frame, read as they did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import zstandard

from watchkeeper.model import PackedPayload, PayloadRow

LEVEL = 3  # zstd level 3: DESIGN.md measured 3-4x on prompt text, 28x on attributes JSON
#: Longest document kept as it is, not compressed on its own. A span's `meta` is a few
#: hundred bytes, much of it the resource's JSON, the same for every span of a service;
#: its `io` a prompt and a completion, whose system prompt and tool schemas repeat from
#: call to call. A zstd frame of one alone shrank it little (bench.ingest's spans: `meta`
#: 355 -> 214 bytes, `io` 1,043 -> 296), while the store compresses the column's values
#: together (DuckDB: zstd, `_duckdb_schema.payloads_ddl`; ClickHouse: ZSTD over a block),
#: which finds what they share. Measured on bench.ingest's spans in DuckDB: `meta` raw
#: took the file from 377.6 to 293.8 bytes a span (then by FSST), `io` raw from 152.5 to
#: 102.7; the workers skip a frame's ~4 µs each. Longer documents stay frames: DuckDB
#: reads a column's values by vectors of 2,048, and a vector of long texts is megabytes
#: to decompress for one span's page.
RAW_MAX = 4096
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # how every zstd frame begins


class PayloadCodec:
    """Compresses payloads (one instance per thread or process: zstd contexts are not shared).

    The DuckDB store offers this class to ingest (`DuckDBStore.payload_codec`): its workers
    `pack` payloads, and the writer stores the blobs as they come.
    """

    def __init__(self) -> None:
        self._zc = zstandard.ZstdCompressor(level=LEVEL)

    def io(self, p: PayloadRow) -> bytes | None:
        """The compressed [input, output] pair, or None when both are empty."""
        if p.input is None and p.output is None:
            return None
        return self._packed(orjson.dumps([p.input, p.output]))

    def meta(self, p: PayloadRow) -> bytes:
        """The attributes, resource, events, links and status message (see `RAW_MAX`)."""
        return self._packed(
            orjson.dumps([p.attributes, p.resource, p.events, p.links, p.status_message])
        )

    def _packed(self, doc: bytes) -> bytes:
        return doc if len(doc) <= RAW_MAX else bytes(self._zc.compress(doc))

    def pack(self, p: PayloadRow) -> PackedPayload:
        """The payload with its text and documents compressed."""
        return PackedPayload(p.project, p.trace_id, p.span_id, p.start_ns, self.io(p), self.meta(p))

    def blobs(self, rows: Sequence[PayloadRow | PackedPayload]) -> tuple[list[Any], list[Any]]:
        """The `io` and `meta` blobs of these rows (packed ones as they are)."""
        io: list[Any] = []
        meta: list[Any] = []
        for r in rows:
            if isinstance(r, PackedPayload):
                io.append(r.io)
                meta.append(r.meta)
            else:
                io.append(self.io(r))
                meta.append(self.meta(r))
        return io, meta


def _unpacked(blob: bytes, dz: zstandard.ZstdDecompressor) -> Any:
    """The JSON document of a blob, a frame of it or the document itself."""
    return orjson.loads(dz.decompress(blob) if blob[:4] == _ZSTD_MAGIC else blob)


def decode_io(blob: bytes | None, dz: zstandard.ZstdDecompressor) -> tuple[str | None, str | None]:
    """Input and output text of an `io` blob."""
    if blob is None:
        return None, None
    pair: list[Any] = _unpacked(blob, dz)
    return pair[0], pair[1]


def decode_payload(row: tuple[Any, ...], dz: zstandard.ZstdDecompressor) -> PayloadRow:
    """A `PayloadRow` from (project, trace_id, span_id, start_ns, io, meta)."""
    project, trace_id, span_id, start_ns, io, meta = row
    text_in, text_out = decode_io(io, dz)
    doc: list[Any] = _unpacked(meta, dz) if meta is not None else ["{}", "{}", "[]", "[]", None]
    attributes, resource, events, links, status = doc
    return PayloadRow(
        project, trace_id, span_id, int(start_ns), text_in, text_out,
        attributes, resource, events, links, status,
    )  # fmt: skip


def matches(blob: bytes | None, needle: str, dz: zstandard.ZstdDecompressor) -> bool:
    """Whether the input or output text contains `needle` (already lower-cased)."""
    text_in, text_out = decode_io(blob, dz)
    return needle in (text_in or "").lower() or needle in (text_out or "").lower()
