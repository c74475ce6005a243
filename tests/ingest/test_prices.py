"""Price cases from tests/data/prices/ through `Pricer` (genai-prices + overrides)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.ingest.conftest import DATA
from watchkeeper.config import PriceOverride
from watchkeeper.ingest import Pricer, Rates, Tokens, cost_of

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "prices" / "cases.yaml").read_text())
SHARED = Pricer()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_price_case(case: dict[str, Any]) -> None:
    overrides = [PriceOverride(**o) for o in case.get("overrides", [])]
    pricer = Pricer(overrides) if overrides else SHARED
    tokens = Tokens(
        case.get("input", 0),
        case.get("output", 0),
        case.get("cache_read", 0),
        case.get("cache_write", 0),
        case.get("reasoning", 0),
    )
    got = pricer.cost(case["provider"], case["model"], tokens)
    if case["expected_usd"] is None:
        assert got is None
    else:
        assert got == pytest.approx(case["expected_usd"], rel=1e-9)


def test_lookups_are_cached_per_model() -> None:
    calls: list[tuple[str | None, str]] = []

    def lookup(provider: str | None, model: str) -> Rates | None:
        calls.append((provider, model))
        return Rates(input=1e-6, output=2e-6)

    pricer = Pricer(lookup=lookup)
    for i in range(1000):
        assert pricer.cost("p", "m", Tokens(i, i)) == pytest.approx(i * 3e-6)
    assert calls == [("p", "m")]


def test_a_failing_price_table_means_missing_not_a_crash() -> None:
    def broken(provider: str | None, model: str) -> Rates | None:
        raise RuntimeError("price table unreadable")

    assert Pricer(lookup=broken).cost("openai", "gpt-4o", Tokens(1, 1)) is None


def test_tiers_pick_the_rate_by_total_input() -> None:
    rates = Rates(input=(1e-6, ((100, 2e-6),)), output=1e-6)
    assert cost_of(rates, Tokens(100, 0)) == pytest.approx(100e-6)
    assert cost_of(rates, Tokens(101, 0)) == pytest.approx(202e-6)
