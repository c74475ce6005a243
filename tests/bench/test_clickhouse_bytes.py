"""`bench.query --bytes` on a small store: every column is measured under every candidate
codec that applies to it, on the engine itself (chDB), and the declared codecs are read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.query import _bytes

from tests.datagen import generate
from tests.store.conftest import chdb_url
from watchkeeper.store.clickhouse import ClickHouseStore


@pytest.fixture(name="client")
def _client(tmp_path: Path) -> Iterator[Any]:
    """A client on a store holding 300 traces (as the benchmark opens its data)."""
    import clickhouse_connect

    url = chdb_url(tmp_path)
    store = ClickHouseStore(url, database="bytes_trial")
    store.write(generate("demo", 300).batch())
    store.close()
    client = clickhouse_connect.get_client(dsn=url, database="bytes_trial")
    for table in ("spans", "payloads"):  # per-column sizes: wide parts, as a big store has
        client.command(f"ALTER TABLE {table} MODIFY SETTING {_bytes.WIDE}")
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    yield client
    client.close()


def _rows(client: Any) -> Any:
    return lambda sql: client.query(sql).result_rows


def test_every_span_column_is_tried_under_each_codec_that_fits(client: Any) -> None:
    sizes = _bytes.trial(_rows(client), client.command, "bytes_trial", "spans", 1000)
    assert sizes["start_ns"].keys() == set(_bytes.INT_CODECS)
    assert sizes["cost_usd"].keys() == set(_bytes.FLOAT_CODECS)
    assert sizes["trace_id"].keys() >= set(_bytes.STRING_CODECS)
    # 32 hex digits a row uncompressed; every trace's 4+ spans share one: ZSTD packs them
    assert sizes["trace_id"]["ZSTD(1)"] < sizes["trace_id"]["NONE"] / 4
    tables = {row[0] for row in _rows(client)("SHOW TABLES FROM bytes_trial")}
    assert not tables & {"codec_trial", "codec_sample"}  # the scratch tables are gone


def test_the_declared_codecs_are_read_back(client: Any) -> None:
    codecs = _bytes.codecs_of(_rows(client), "bytes_trial")
    assert codecs["spans.start_ns"] == "Delta(8), ZSTD(1)"
    assert codecs["spans.user_id"] == "ZSTD(3)"
    assert codecs["payloads.meta"] == "ZSTD(3)"
    ((spans,),) = _rows(client)("SELECT count() FROM spans")
    cols = _bytes.columns(_rows(client), "bytes_trial", spans)
    assert {(t, c) for t, c, *_ in cols} >= {("spans", "span_id"), ("payloads", "io")}


def test_distinct_payloads_compress_further_only_as_measured(client: Any) -> None:
    insert = client.insert_arrow
    sizes = _bytes.payload_trial(_rows(client), client.command, insert, "bytes_trial", 300)
    assert sizes.keys() == {"LZ4", "ZSTD(1)", "ZSTD(3)", "NONE"}
    io_none, meta_none, raw = sizes["NONE"]
    assert io_none + meta_none >= raw  # stored as they come: the blobs and their lengths
    assert sizes["ZSTD(3)"][1] < meta_none  # the attribute documents share their frames
