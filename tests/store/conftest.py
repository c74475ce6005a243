"""The backends every store test runs against, and the data they are filled with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.datagen import Dataset, generate, scores_for
from watchkeeper.store import Store
from watchkeeper.store.duckdb import DuckDBStore

# name -> factory(tmp_path). A new backend (ClickHouse via chDB) joins by adding a line here.
# The on-disk DuckDB store scans text in small rounds so paging of text search is exercised.
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "duckdb-memory": lambda _tmp: DuckDBStore(None),
    "duckdb-file": lambda tmp: DuckDBStore(tmp / "spans.duckdb", text_chunk=40, text_budget=80),
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
