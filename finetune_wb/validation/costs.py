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

import difflib
from collections.abc import Mapping

from finetune_wb.validation.tokens import base_model

# The model ids OpenAI documents for fine-tuning, the aliases that point at them, and Azure OpenAI's names.
# A name that only shares a prefix with these (``gpt-4o-mini-2024-07-81``) gets an ``unknown_model`` warning
# naming the closest ids, although the prefix tables below still give it a limit and a price.
KNOWN_MODELS: tuple[str, ...] = (
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "o4-mini-2025-04-16",
    "gpt-4-0613",
    "gpt-3.5-turbo-0125",
    "gpt-3.5-turbo-1106",
    "gpt-3.5-turbo-0613",
    "davinci-002",
    "babbage-002",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o4-mini",
    "gpt-4",
    "gpt-3.5-turbo",
    "gpt-35-turbo",
    "gpt-35-turbo-0125",
    "gpt-35-turbo-1106",
    "gpt-35-turbo-0613",
)

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


def is_known_model_id(model: str, *, known: tuple[str, ...] = KNOWN_MODELS) -> bool:
    """Whether ``model`` (or the base of a fine-tune ``ft:BASE:...``) is exactly one of the known ids."""
    return base_model(model).strip().lower() in known


def closest_models(model: str, *, n: int = 3, known: tuple[str, ...] = KNOWN_MODELS) -> list[str]:
    """The known model ids most like ``model`` (difflib), best first; empty when none is close."""
    return difflib.get_close_matches(base_model(model).strip().lower(), known, n=n, cutoff=0.6)


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
