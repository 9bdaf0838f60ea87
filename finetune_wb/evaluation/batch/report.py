"""Adding what batch mode did to an :class:`~finetune_wb.evaluation.report.EvalReport`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_wb.evaluation.pricing import batch_cost

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.batch.runner import BatchOutcome


def with_batches(report: Any, outcome: BatchOutcome, discount: float | None) -> Any:
    """The report (an ``EvalReport``; this package sits below the report module) with its ``batches``,
    their warnings, ``params.mode`` and each model's price at the batch discount."""
    models = [
        m.model_copy(update={"estimated_batch_cost_usd": batch_cost(m.estimated_cost_usd, discount)})
        for m in report.models
    ]
    return report.model_copy(
        update={
            "batches": outcome.summaries,
            "warnings": [*report.warnings, *outcome.warnings],
            "params": {**report.params, "mode": "batch"},
            "models": models,
        }
    )
