"""Cost of a model call: `genai-prices` for the price table, user overrides first.

Token convention of our normalized columns (the OpenTelemetry GenAI rule: input_tokens "SHOULD
include all types of input tokens, including cached tokens", and cache_read/cache_creation
counts "SHOULD be included in gen_ai.usage.input_tokens"; genai-prices reads usage the same
way): `input_tokens` counts *all* input tokens, cache reads and cache writes included;
`output_tokens` counts all output tokens, reasoning included. So the uncached input is
`input - cache_read - cache_write`, and plain output is `output - reasoning`.

Looking a model up in genai-prices costs ~100 µs, so each (provider, model) is resolved once
into float `Rates` (an LRU cache) and the per-span arithmetic is a handful of multiplications.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # overrides become `Rates`: the workers never load the config's models
    from watchkeeper.config import PriceOverride

log = logging.getLogger("watchkeeper.ingest")

#: Our provider names (gen_ai.provider.name values and old gen_ai.system values) → genai-prices ids.
PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "azure": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "aws_bedrock": "aws",
    "bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "google": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "together": "together",
    "together_ai": "together",
    "fireworks": "fireworks",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
}

Tiered = tuple[float, tuple[tuple[int, float], ...]]  # base price, ((start, price), ...)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token for each kind of token; `None` means "priced like the plain kind"."""

    input: float | Tiered
    output: float | Tiered
    cache_read: float | Tiered | None = None
    cache_write: float | Tiered | None = None
    reasoning: float | Tiered | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts of one call, in our convention (input includes cache, output reasoning)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


def _rate(price: float | Tiered, total_input: int) -> float:
    if isinstance(price, float):
        return price
    base, tiers = price
    for start, tier_price in reversed(tiers):
        if total_input > start:  # genai-prices' rule: the tier is chosen by total input
            return tier_price
    return base


def cost_of(rates: Rates, t: Tokens) -> float:
    """USD cost of `t` at `rates` (pure)."""
    total_in = t.input
    uncached = max(t.input - t.cache_read - t.cache_write, 0)
    plain_out = max(t.output - t.reasoning, 0)
    in_rate = _rate(rates.input, total_in)
    out_rate = _rate(rates.output, total_in)
    read_rate = in_rate if rates.cache_read is None else _rate(rates.cache_read, total_in)
    write_rate = in_rate if rates.cache_write is None else _rate(rates.cache_write, total_in)
    reason_rate = out_rate if rates.reasoning is None else _rate(rates.reasoning, total_in)
    return (
        uncached * in_rate
        + t.cache_read * read_rate
        + t.cache_write * write_rate
        + plain_out * out_rate
        + t.reasoning * reason_rate
    )


def _per_token(price: Any) -> float | Tiered | None:
    """A genai-prices price per million tokens (Decimal or TieredPrices) → per token."""
    if price is None:
        return None
    if isinstance(price, Decimal | int | float):
        return float(price) / 1e6
    tiers = tuple((int(t.start), float(t.price) / 1e6) for t in price.tiers)
    return (float(price.base) / 1e6, tiers)


def genai_prices_lookup(provider: str | None, model: str) -> Rates | None:
    """Rates from the genai-prices table, or None when it does not know the model."""
    from genai_prices import Usage, calc_price

    provider_id = PROVIDER_IDS.get(provider.lower()) if provider else None
    attempts = [provider_id, None] if provider_id else [None]
    for pid in attempts:
        try:
            found = calc_price(Usage(input_tokens=0), model, provider_id=pid)
        except LookupError:
            continue
        mp = found.model_price.__dict__
        text_in, text_out = _per_token(mp.get("input_mtok")), _per_token(mp.get("output_mtok"))
        if text_in is None:
            return None  # not priced by input tokens (images, audio seconds...)
        return Rates(
            input=text_in,
            output=0.0 if text_out is None else text_out,  # embeddings have no output price
            cache_read=_per_token(mp.get("cache_read_mtok")),
            cache_write=_per_token(mp.get("cache_write_mtok")),
            reasoning=_per_token(mp.get("output_reasoning_mtok")),
        )
    return None


def _override_rates(o: PriceOverride) -> Rates:
    def per_token(v: float | None) -> float | None:
        return None if v is None else v / 1e6

    return Rates(
        input=o.input / 1e6,
        output=o.output / 1e6,
        cache_read=per_token(o.cache_read),
        cache_write=per_token(o.cache_write),
        reasoning=per_token(o.reasoning),
    )


class Pricer:
    """Prices model calls: user overrides, then the lookup (genai-prices), cached per model."""

    def __init__(
        self,
        overrides: Sequence[PriceOverride] = (),
        *,
        lookup: Callable[[str | None, str], Rates | None] = genai_prices_lookup,
        cache_size: int = 4096,
    ) -> None:
        self._overrides = {
            (o.provider.lower() if o.provider else None, o.model.lower()): _override_rates(o)
            for o in overrides
        }
        self._lookup = lookup
        self.rates = functools.lru_cache(maxsize=cache_size)(self._resolve)

    def __getstate__(self) -> tuple[Any, ...]:
        # sent to ingest worker processes: the cache stays behind
        return self._overrides, self._lookup, self.rates.cache_parameters()["maxsize"]

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self._overrides, self._lookup, size = state
        self.rates = functools.lru_cache(maxsize=size)(self._resolve)

    def _resolve(self, provider: str | None, model: str) -> Rates | None:
        key_model = model.lower()
        prov = provider.lower() if provider else None
        found = self._overrides.get((prov, key_model)) or self._overrides.get((None, key_model))
        if found is not None:
            return found
        try:
            return self._lookup(provider, model)
        except Exception:  # a broken price table must never stop ingest
            log.exception("price lookup failed for %s/%s", provider, model)
            return None

    def cost(self, provider: str | None, model: str, tokens: Tokens) -> float | None:
        """USD cost of a call, or None when no price is known for the model."""
        rates = self.rates(provider, model)
        return None if rates is None else cost_of(rates, tokens)
