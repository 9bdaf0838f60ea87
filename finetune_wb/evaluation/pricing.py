"""Estimated inference prices, for the cost line of an evaluation report.

USD per one million input / output tokens from OpenAI's public price list for the models that can be
fine-tuned (fine-tuned models are billed at their own, higher, rate). Prices change: pass ``prices=`` to
``evaluate`` to override or extend. Unknown models get no cost rather than a guess. The likely replacements of
retiring fine-tunes (gpt-5, gpt-5-mini, gpt-5-nano) are priced too, for ``finetune_wb.migration``.

The Batch API bills the same tokens at a discount (:data:`BATCH_DISCOUNT`, 50 % on OpenAI's price list;
``BatchOptions(discount=...)`` overrides it, e.g. for a provider with another rate).
"""

from __future__ import annotations

import re

from finetune_wb.model_ids import parse_model_id

# model prefix -> (input, output) USD per 1M tokens; the longest matching prefix wins.
BASE_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}
# Replacement candidates (not fine-tunable on OpenAI): matched only as the exact name or a dated snapshot of it
# (``gpt-5-mini-2025-08-07``), never as a prefix, because later point releases (gpt-5.x) are priced differently.
EXACT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}
FINE_TUNED_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.30, 1.20),
    "gpt-4o": (3.75, 15.00),
    "gpt-4.1-nano": (0.20, 0.80),
    "gpt-4.1-mini": (0.80, 3.20),
    "gpt-4.1": (3.00, 12.00),
    "gpt-3.5-turbo": (3.00, 6.00),
}


def _lookup(table: dict[str, tuple[float, float]], model: str) -> tuple[float, float] | None:
    matches = [p for p in table if model.startswith(p)]
    return table[max(matches, key=len)] if matches else None


def _exact(model: str) -> tuple[float, float] | None:
    """:data:`EXACT_PRICES` for ``model`` or a dated snapshot of it (``-YYYY-MM-DD``)."""
    name = re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model)
    return EXACT_PRICES.get(name)


def price_per_million(
    model: str, overrides: dict[str, tuple[float, float]] | None = None
) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for ``model`` (``ft:<base>:...`` names use fine-tuned prices)."""
    if overrides:
        found = _lookup(overrides, model)
        if found is not None:
            return found
    exact = _exact(model)
    if exact is not None:
        return exact
    parsed = parse_model_id(model)  # OpenAI's ft:<base>:... and Azure's <base>.ft-<hex> alike
    if parsed.fine_tuned:
        return _lookup(FINE_TUNED_PRICES, parsed.base) if parsed.base else None
    return _lookup(BASE_PRICES, model)


def estimate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    overrides: dict[str, tuple[float, float]] | None = None,
) -> float | None:
    prices = price_per_million(model, overrides)
    if prices is None:
        return None
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1_000_000


BATCH_DISCOUNT = 0.5
"""The share of the list price the Batch API takes off (OpenAI: 50 %)."""


def batch_cost(sync_cost: float | None, discount: float | None = None) -> float | None:
    """``sync_cost`` at the batch price (``discount`` of None: :data:`BATCH_DISCOUNT`)."""
    if sync_cost is None:
        return None
    return sync_cost * (1 - (BATCH_DISCOUNT if discount is None else discount))
