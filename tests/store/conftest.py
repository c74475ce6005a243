"""The backends every store test runs against, and the data they are filled with."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.datagen import Dataset, generate, scores_for
from watchkeeper.store import Store
from watchkeeper.store.clickhouse import ClickHouseStore
from watchkeeper.store.duckdb import DuckDBStore

_CHDB: dict[str, Path] = {}
_DATABASES = itertools.count()


def _clickhouse(tmp: Path) -> Store:
    """A ClickHouse store on chDB. chDB runs one engine (one path) per process: every store of
    the session shares the first one's path, each in a database of its own."""
    path = _CHDB.setdefault("path", tmp / "chdb")
    return ClickHouseStore(
        f"chdb://{path}", database=f"t{next(_DATABASES)}", text_chunk=40, text_budget=80
    )


# name -> factory(tmp_path). A new backend joins by adding a line here. The on-disk stores
# scan text in small rounds so paging of text search is exercised.
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "duckdb-memory": lambda _tmp: DuckDBStore(None),
    "duckdb-file": lambda tmp: DuckDBStore(tmp / "spans.duckdb", text_chunk=40, text_budget=80),
    "clickhouse-chdb": _clickhouse,
}


@pytest.fixture(params=sorted(BACKENDS))
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, empty store of each backend."""
    store = BACKENDS[request.param](tmp_path)
    yield store
    store.close()


@pytest.fixture(scope="session")
def demo() -> Dataset:
    """300 traces of project "demo" (about 850 spans)."""
    return generate("demo", 300)


@pytest.fixture(scope="session")
def other() -> Dataset:
    """120 traces of project "other", interleaved in time with "demo"."""
    return generate("other", 120, seed=3)


def _fill(store: Store, demo: Dataset, other: Dataset) -> Store:
    for data in (demo, other):
        for batch in data.batches(97):
            store.write(batch)
    traces = sorted({s.trace_id for s in demo.spans})[:10]
    store.write_scores(scores_for("demo", traces))
    store.write_scores(scores_for("other", sorted({s.trace_id for s in other.spans})[:3]))
    return store


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    demo: Dataset,
    other: Dataset,
) -> Iterator[Store]:
    """A store of each backend holding "demo" and "other" (written in batches) and scores.

    Shared by the tests of a module: they only read it.
    """
    store = _fill(BACKENDS[request.param](tmp_path_factory.mktemp("store")), demo, other)
    yield store
    store.close()


@pytest.fixture
def fresh_store(empty_store: Store, demo: Dataset, other: Dataset) -> Store:
    """Like `store`, but for a test that changes the data."""
    return _fill(empty_store, demo, other)
