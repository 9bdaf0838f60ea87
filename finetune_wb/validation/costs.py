"""Per-model limits, the default-epochs rule, billed tokens and the training-cost estimate.

The tables are plain dicts so callers can read and override them (``validate_file(..., prices=...)``).
Lookup is by longest matching prefix of the base model name (``ft:BASE:...`` uses BASE).

Context limits are the per-example training context lengths documented for fine-tuning; an example longer
than its model's limit is truncated during training (and billed up to the limit). Prices are list prices in
USD per 1M *training* tokens. docs/data.md says which entries were checked against which published figures
and which were not; check OpenAI's pricing page and pass your own table when prices change. Reinforcement
fine-tuning (o4-mini) is billed per hour of training, not per token, so it has no entry here.
"""

from __future__ import annotations

from collections.abc import Mapping

from finetune_wb.validation.tokens import base_model

# Per-example training context limit (tokens).
CONTEXT_LIMITS: dict[str, int] = {
    "gpt-4.1": 65_536,
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "o4-mini": 65_536,
    "gpt-3.5-turbo": 16_385,
    "gpt-3.5-turbo-0613": 4_096,
    "gpt-35-turbo": 16_385,  # Azure OpenAI's name for the same models
    "gpt-35-turbo-0613": 4_096,
    "gpt-4-0613": 8_192,
    "gpt-4": 8_192,
    "davinci-002": 16_384,
    "babbage-002": 16_384,
}
# Unknown models: the smallest limit of today's fine-tunable chat models (also the seed's constant).
DEFAULT_CONTEXT_LIMIT = 16_385

# USD per 1M training tokens.
TRAINING_PRICES_PER_MILLION: dict[str, float] = {
    "gpt-4.1-nano": 1.50,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1": 25.00,
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-3.5-turbo": 8.00,
    "davinci-002": 6.00,
    "babbage-002": 0.40,
}

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def _by_prefix(table: Mapping[str, float | int], model: str) -> float | int | None:
    name = base_model(model).strip().lower()
    best = None
    for prefix in table:
        if name.startswith(prefix.lower()) and (best is None or len(prefix) > len(best)):
            best = prefix
    return table[best] if best is not None else None


def context_limit(model: str, *, table: Mapping[str, int] | None = None) -> int | None:
    """The model's per-example limit, or None when the table does not know the model."""
    value = _by_prefix(table if table is not None else CONTEXT_LIMITS, model)
    return int(value) if value is not None else None


def price_per_million(model: str, *, prices: Mapping[str, float] | None = None) -> float | None:
    """USD per 1M training tokens for the model, or None when the price table does not know it.

    ``prices`` entries take precedence over the built-in table (so one override keeps the rest).
    """
    if prices:
        value = _by_prefix(prices, model)
        if value is not None:
            return float(value)
    value = _by_prefix(TRAINING_PRICES_PER_MILLION, model)
    return float(value) if value is not None else None


def default_epochs(n_examples: int) -> int:
    """The seed's rule: 3 epochs, raised for small files (to ~100 example passes, at most 25) and
    lowered for big ones (to ~25,000 example passes, at least 1)."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    n_epochs = TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return n_epochs


def estimate_cost_usd(
    billed_tokens: int, model: str, *, prices: Mapping[str, float] | None = None
) -> float | None:
    rate = price_per_million(model, prices=prices)
    if rate is None:
        return None
    return billed_tokens * rate / 1_000_000
