"""The backends every store test runs against, and the data they are filled with."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.datagen import Dataset, generate, scores_for
from watchkeeper.store import Store
from watchkeeper.store._sql import SqlStore
from watchkeeper.store.clickhouse import ClickHouseStore
from watchkeeper.store.duckdb import DuckDBStore

_CHDB: dict[str, Path] = {}
_DATABASES = itertools.count()


def chdb_url(tmp: Path) -> str:
    """The session's chDB engine. chDB runs one engine (one path) per process: every store of
    the session shares the first one's path, each in a database of its own."""
    return f"chdb://{_CHDB.setdefault('path', tmp / 'chdb')}"


def _clickhouse(tmp: Path) -> Store:
    return ClickHouseStore(
        chdb_url(tmp), database=f"t{next(_DATABASES)}", text_chunk=40, text_budget=80
    )


#: The engines of `open_store` (the `engine` fixture's values).
ENGINES = ("duckdb", "clickhouse")


def open_store(engine: str, **kwargs: Any) -> SqlStore:
    """A new, empty store of `engine` ("duckdb": in memory; "clickhouse": on chDB) built
    with `kwargs`. ClickHouse merges the rollups' partial rows itself (no `compact_every`)."""
    if engine == "duckdb":
        return DuckDBStore(None, **kwargs)
    kwargs.pop("compact_every", None)
    url = chdb_url(Path(tempfile.mkdtemp(prefix="wk-chdb-")))
    return ClickHouseStore(url, database=f"t{next(_DATABASES)}", **kwargs)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn, for a module's own stores (`open_store`)."""
    return str(request.param)


# name -> factory(tmp_path). A new backend joins by adding a line here. The on-disk stores
# scan text in small rounds so paging of text search is exercised.
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "duckdb-memory": lambda _tmp: DuckDBStore(None),
    "duckdb-file": lambda tmp: DuckDBStore(tmp / "spans.duckdb", text_chunk=40, text_budget=80),
    "clickhouse-chdb": _clickhouse,
}


#: Reasons a store test runs on DuckDB only (a module's DUCKDB_ONLY).
THE_DUCKDB_ENGINE = "The DuckDB engine itself: its file, migrations, process lock, recovery, memory"
#: The fixtures that run a test on every backend.
_EVERY_BACKEND = {"empty_store", "store", "fresh_store", "engine"}
#: Modules that open the engines they are about themselves.
_OWN_ENGINES = {"test_clickhouse", "test_clickhouse_down", "test_dialects", "test_engines_agree"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every store test runs on every backend, or its module says why not (`DUCKDB_ONLY`: a
    reason, or a dict of reasons by test name): marked `duckdb_only`, counted in the summary.
    A test that does neither stops the run."""
    for item in items:
        module = getattr(item, "module", None)
        if module is None or not module.__name__.startswith("tests.store."):
            continue
        if module.__name__.rpartition(".")[2] in _OWN_ENGINES:
            continue
        if _EVERY_BACKEND & set(getattr(item, "fixturenames", ())):
            continue
        reasons = getattr(module, "DUCKDB_ONLY", None)
        name = getattr(item, "originalname", item.name)
        reason = reasons.get(name) if isinstance(reasons, dict) else reasons
        if not reason:
            raise pytest.UsageError(
                f"{item.nodeid} runs on DuckDB only: use a store fixture of every backend, "
                "or say why in its module's DUCKDB_ONLY"
            )
        item.add_marker(pytest.mark.duckdb_only(reason))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many store tests ran on DuckDB only, by reason."""
    reasons: dict[str, int] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            for key, value in getattr(report, "user_properties", []):
                if key == "duckdb_only" and report.when == "call":
                    reasons[value] = reasons.get(value, 0) + 1
    if reasons:
        terminalreporter.section("store tests on DuckDB only")
        for reason, n in sorted(reasons.items()):
            terminalreporter.write_line(f"{n:4d}  {reason}")


@pytest.fixture(autouse=True)
def _note_duckdb_only(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("duckdb_only")
    if marker is not None:
        request.node.user_properties.append(("duckdb_only", marker.args[0]))


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
