"""What a deployment costs to keep: Azure's hourly hosting fee of a fine-tuned model, by SKU.

The Developer tier has no hosting fee (you pay tokens; Azure deletes it after 24 h). Standard and
GlobalStandard deployments of a fine-tuned model pay a fee per hour while they exist (Azure deletes one
after 15 days without calls). The figures are Azure's list prices as published on its pricing page
(checked 2026-12, USD); they change and differ by region, so pass your own ``table=`` where it matters.
"""

from __future__ import annotations

from finetune_wb.model_ids import base_model_of

HOSTING_USD_PER_HOUR: dict[str, float] = {
    "gpt-4o-mini": 1.70,
    "gpt-4o": 1.70,
    "gpt-4.1": 1.70,
    "gpt-4.1-mini": 1.70,
    "gpt-4.1-nano": 1.70,
    "o4-mini": 1.70,
}
"""Hourly hosting fee of a Standard / GlobalStandard deployment, by base model family."""
DEFAULT_USD_PER_HOUR = 1.70
FREE_SKUS = ("DeveloperTier",)


def hosting_usd_per_hour(model: str, sku: str, table: dict[str, float] | None = None) -> float:
    """The hourly fee of deploying ``model`` (a fine-tune id or its base) with Azure SKU ``sku``."""
    if sku in FREE_SKUS or sku.lower() in ("developer", "developertier"):
        return 0.0
    rows = HOSTING_USD_PER_HOUR if table is None else table
    base = base_model_of(model).lower()
    best = None
    for key in rows:
        if (base == key or base.startswith(key + "-")) and (best is None or len(key) > len(best)):
            best = key
    return rows[best] if best is not None else DEFAULT_USD_PER_HOUR
