"""Logging an EvalReport to a W&B run (the caller's run: it is never finished here).

What lands in the run: config ``eval`` (parameters, evaluators with their arguments, models), one
side-by-side predictions table, summary ``eval/<model>/<evaluator>`` (+ ``/ci_low``, ``/ci_high`` and
classification extras), the pairwise comparisons (a table and summary keys), a confusion-matrix plot per
model and classification evaluator, and lineage to the test dataset and the fine-tuned models' artifacts
through :func:`finetune_wb.tracking.link_input` (offline: ids and digests in the config).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.report import EvalReport

logger = logging.getLogger(__name__)


def _key(label: str) -> str:
    """W&B nests keys on '/', so a model label must not contain one."""
    return label.replace("/", "_")


def confusion_pairs(details: dict[str, Any]) -> tuple[list[int], list[int]]:
    """``(y_true, preds)`` label indices with one pair per scored row, read from a metric's own confusion
    matrix (``details["confusion_matrix"]`` over ``details["matrix_labels"]``), so the W&B plot shows
    exactly the counts the report computed."""
    gold: list[int] = []
    pred: list[int] = []
    for truth, row in enumerate(details.get("confusion_matrix") or []):
        for predicted, count in enumerate(row):
            gold.extend([truth] * int(count))
            pred.extend([predicted] * int(count))
    return gold, pred


def predictions_table(report: EvalReport) -> Any:
    """One row per example: input, target, then each model's output, error and scores side by side."""
    import wandb

    ev_names = [e.name for e in report.evaluators]
    columns: list[Any] = ["index", "input", "target"]
    for m in report.models:
        columns += [f"{m.label} output", f"{m.label} error"] + [f"{m.label} {n}" for n in ev_names]
    by_key = {(r.example_index, r.model): r for r in report.rows}
    data: list[Any] = []
    for ex in report.examples:
        row: list[Any] = [ex.index, ex.input, ex.target]
        for m in report.models:
            r = by_key[(ex.index, m.label)]
            row += [r.output, r.error] + [r.scores.get(n) for n in ev_names]
        data.append(row)
    return wandb.Table(columns=columns, data=data, allow_mixed_types=True)


def summary_metrics(report: EvalReport) -> dict[str, Any]:
    """The flat ``eval/...`` summary keys."""
    out: dict[str, Any] = {}
    for m in report.models:
        k = _key(m.label)
        out[f"eval/{k}/answered"] = m.n_answered
        out[f"eval/{k}/unanswered"] = m.n_unanswered
        out[f"eval/{k}/prompt_tokens"] = m.prompt_tokens
        out[f"eval/{k}/completion_tokens"] = m.completion_tokens
        if m.estimated_cost_usd is not None:
            out[f"eval/{k}/estimated_cost_usd"] = m.estimated_cost_usd
        for name, metric in report.metrics[m.label].items():
            if metric.value is None:
                continue
            out[f"eval/{k}/{name}"] = metric.value
            out[f"eval/{k}/{name}/ci_low"] = metric.ci_low
            out[f"eval/{k}/{name}/ci_high"] = metric.ci_high
            for extra in ("macro_precision", "macro_recall", "macro_f1", "micro_f1"):
                if extra in metric.details:
                    out[f"eval/{k}/{name}/{extra}"] = metric.details[extra]
    for c in report.comparisons:
        if c.difference is None:
            continue
        prefix = f"eval/compare/{_key(c.model_a)}_vs_{_key(c.model_b)}/{c.evaluator}"
        out[f"{prefix}/difference"] = c.difference
        out[f"{prefix}/ci_low"] = c.ci_low
        out[f"{prefix}/ci_high"] = c.ci_high
        out[f"{prefix}/p_value"] = c.p_value
    return out


def _link_lineage(report: EvalReport, run: Any, lineage: Sequence[Any]) -> None:
    from finetune_wb.tracking.lineage import link_input
    from finetune_wb.tracking.model_artifact import model_ref

    refs: list[Any] = list(lineage)
    for m in report.models:
        found = model_ref(fine_tuned_model=m.model)
        if found is not None:
            refs.append(found)
    for ref in refs:
        try:
            link_input(run, ref)
        except Exception as exc:  # lineage must not lose the evaluation itself
            logger.warning("could not record %r as an input of the eval run: %s", ref, exc)


def log_report(report: EvalReport, run: Any, *, lineage: Sequence[Any] = ()) -> None:
    """Log ``report`` to ``run`` (job_type "eval" recommended); see the module docstring for what is logged."""
    import wandb

    run.config.update(
        {
            "eval": {
                "source": report.source,
                "params": report.params,
                "seed": report.seed,
                "models": [
                    {"label": m.label, "model": m.model, "base_url": m.base_url} for m in report.models
                ],
                "evaluators": [e.model_dump(mode="json") for e in report.evaluators],
                "n_examples": len(report.examples),
            }
        },
        allow_val_change=True,
    )
    _link_lineage(report, run, lineage)
    logs: dict[str, Any] = {"eval/predictions": predictions_table(report)}
    if report.comparisons:
        cols: list[Any] = [
            "evaluator",
            "model_a",
            "model_b",
            "n",
            "mean_a",
            "mean_b",
            "difference",
            "ci_low",
            "ci_high",
        ]
        cols += ["p_value", "test", "same_model"]
        logs["eval/comparisons"] = wandb.Table(
            columns=cols,
            data=[[getattr(c, col) for col in cols] for c in report.comparisons],
            allow_mixed_types=True,
        )
    for m in report.models:
        for name, metric in report.metrics[m.label].items():
            matrix_labels = metric.details.get("matrix_labels")
            if not matrix_labels:
                continue
            gold, pred = confusion_pairs(metric.details)
            if gold:
                logs[f"eval/{_key(m.label)}/{name}/confusion_matrix"] = wandb.plot.confusion_matrix(
                    y_true=gold, preds=pred, class_names=list(matrix_labels), title=f"{m.label}: {name}"
                )
    run.log(logs)
    for key, value in summary_metrics(report).items():
        run.summary[key] = value
    if report.warnings:
        run.summary["eval/warnings"] = list(report.warnings)
