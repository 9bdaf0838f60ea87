"""Logging an EvalReport to a W&B run (the caller's run: it is never finished here).

Keys are stable across runs, so W&B charts one fine-tune against another: no summary or history key holds
a model id. Each evaluated model gets a **role** (:func:`model_roles`): ``finetune`` for a fine-tuned model
(an ``ft:`` id), ``baseline`` for any other, and ``finetune_2``, ``baseline_2``, ... for the second and later
of the same kind, in the order the models were evaluated. The model ids are in the config:
``models`` (role -> model id) and ``eval.models`` (label, role, model, base_url).

What lands in the run: config ``eval`` (parameters, evaluators with their arguments, models) and
``models``; one predictions table ``eval/predictions`` with a row per example and model (stable columns,
the model in its own column, the predicted label per classification evaluator); summary
``eval/<role>/<evaluator>`` (+ ``/ci_low``, ``/ci_high`` and every numeric classification detail such as
``/macro_f1``), the pairwise comparisons (a table and ``eval/compare/<role_a>_vs_<role_b>/...`` summary
keys), a confusion-matrix plot per role and classification evaluator, and lineage to the test dataset and
the fine-tuned models' artifacts through :func:`finetune_wb.tracking.link_input` (offline: ids and digests
in the config).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb.model_ids import is_fine_tuned

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.evaluation.report import EvalReport

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("index", "role", "model", "label", "input", "target", "output", "error")
"""The fixed leading columns of ``eval/predictions``; then one score column per evaluator (its name) and
one ``<evaluator> predicted`` column per classification evaluator."""


def model_roles(report: EvalReport) -> dict[str, str]:
    """``{model label: role}``: ``finetune``/``baseline`` by kind (an ``ft:`` id is a fine-tune), numbered
    ``_2``, ``_3``, ... from the second model of a kind on, in evaluation order."""
    counts: dict[str, int] = {}
    roles: dict[str, str] = {}
    for m in report.models:
        kind = "finetune" if is_fine_tuned(m.model) or _names_fine_tune(m.label) else "baseline"
        counts[kind] = counts.get(kind, 0) + 1
        roles[m.label] = kind if counts[kind] == 1 else f"{kind}_{counts[kind]}"
    return roles


def _names_fine_tune(label: str) -> bool:
    """A label ``"<deployment> (<fine-tuned model id>)"`` (an Azure deployment of a fine-tune)."""
    inner = label.rsplit("(", 1)[-1].rstrip(")") if label.endswith(")") else ""
    return bool(inner) and is_fine_tuned(inner)


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


def _label_evaluators(report: EvalReport) -> list[str]:
    """The evaluators that predict a label (``classification``), in report order."""
    return [e.name for e in report.evaluators if any(e.name in r.labels for r in report.rows)]


def predictions_table(report: EvalReport) -> Any:
    """One row per (example, model): :data:`PREDICTION_COLUMNS`, the scores, the predicted labels."""
    import wandb

    roles = model_roles(report)
    ev_names = [e.name for e in report.evaluators]
    label_evs = _label_evaluators(report)
    columns: list[Any] = [*PREDICTION_COLUMNS, *ev_names, *[f"{n} predicted" for n in label_evs]]
    by_key = {(r.example_index, r.model): r for r in report.rows}
    data: list[Any] = []
    for ex in report.examples:
        for m in report.models:
            r = by_key[(ex.index, m.label)]
            row: list[Any] = [
                ex.index,
                roles[m.label],
                m.model,
                m.label,
                ex.input,
                ex.target,
                readable_output(r.output, r.tool_calls),
                r.error,
            ]
            row += [r.scores.get(n) for n in ev_names] + [r.labels.get(n) for n in label_evs]
            data.append(row)
    return wandb.Table(columns=columns, data=data, allow_mixed_types=True)


def readable_output(output: str | None, tool_calls: Sequence[dict[str, str]] | None) -> str | None:
    """The answer as people read it: its text, then its tool calls as ``get_weather({"city": "Paris"})``."""
    from finetune_wb.evaluation.tool_calls import render_calls

    rendered = render_calls(tool_calls)
    if not rendered:
        return output
    return f"{output}\n{rendered}" if output else rendered


def detail_tables(report: EvalReport) -> dict[str, Any]:
    """``eval/<role>/<evaluator>/<table>``: the tables an evaluator's details carry (per function, per field)."""
    import wandb

    roles = model_roles(report)
    out: dict[str, Any] = {}
    for m in report.models:
        for name, metric in report.metrics[m.label].items():
            for table, spec in (metric.details.get("tables") or {}).items():
                out[f"eval/{roles[m.label]}/{name}/{table}"] = wandb.Table(
                    columns=list(spec["columns"]),
                    data=[list(row) for row in spec["data"]],
                    allow_mixed_types=True,
                )
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summary_metrics(report: EvalReport) -> dict[str, Any]:
    """The flat ``eval/<role>/...`` and ``eval/compare/...`` summary keys (no model id in any of them)."""
    roles = model_roles(report)
    out: dict[str, Any] = {}
    for m in report.models:
        k = roles[m.label]
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
            for extra, value in metric.details.items():  # macro_f1, micro_f1, ... (scalars only)
                if _number(value):
                    out[f"eval/{k}/{name}/{extra}"] = value
    for c in report.comparisons:
        if c.difference is None:
            continue
        a, b = roles.get(c.model_a, c.model_a), roles.get(c.model_b, c.model_b)
        prefix = f"eval/compare/{a}_vs_{b}/{c.evaluator}"
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


def eval_config(report: EvalReport) -> dict[str, Any]:
    """The config ``log_report`` writes: ``models`` (role -> model id) and ``eval`` (everything else)."""
    roles = model_roles(report)
    return {
        "models": {roles[m.label]: m.model for m in report.models},
        "eval": {
            "source": report.source,
            "params": report.params,
            "seed": report.seed,
            "models": [
                {"label": m.label, "role": roles[m.label], "model": m.model, "base_url": m.base_url}
                for m in report.models
            ],
            "evaluators": [e.model_dump(mode="json") for e in report.evaluators],
            "n_examples": len(report.examples),
        },
    }


def log_report(report: EvalReport, run: Any, *, lineage: Sequence[Any] = ()) -> None:
    """Log ``report`` to ``run`` (job_type "eval" recommended); see the module docstring for what is logged."""
    import wandb

    roles = model_roles(report)
    run.config.update(eval_config(report), allow_val_change=True)
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
            columns=["role_a", "role_b", *cols],
            data=[
                [roles.get(c.model_a), roles.get(c.model_b), *[getattr(c, col) for col in cols]]
                for c in report.comparisons
            ],
            allow_mixed_types=True,
        )
    for m in report.models:
        for name, metric in report.metrics[m.label].items():
            matrix_labels = metric.details.get("matrix_labels")
            if not matrix_labels:
                continue
            gold, pred = confusion_pairs(metric.details)
            if gold:
                logs[f"eval/{roles[m.label]}/{name}/confusion_matrix"] = wandb.plot.confusion_matrix(
                    y_true=gold, preds=pred, class_names=list(matrix_labels), title=f"{m.label}: {name}"
                )
    logs.update(detail_tables(report))
    run.log(logs)
    for key, value in summary_metrics(report).items():
        run.summary[key] = value
    if report.warnings:
        run.summary["eval/warnings"] = list(report.warnings)


EVAL_RUNS_RECORD = "eval-runs.json"
"""Local record of the evaluations the CLI logged: ``{"<entity>/<project>/<run name>": [fingerprint, ...]}``."""


def eval_fingerprint(report: EvalReport) -> str:
    """SHA-256 of what makes an evaluation's results: models and servers, evaluators, request parameters
    (not concurrency or rate limits) and the examples."""
    params = {k: v for k, v in report.params.items() if k not in ("concurrency", "rpm", "tpm")}
    body = {
        "models": [(m.model, m.base_url) for m in report.models],
        "evaluators": [e.model_dump(mode="json") for e in report.evaluators],
        "params": params,
        "examples": [(ex.input, ex.target) for ex in report.examples],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def log_eval_run(
    report: EvalReport, *, project: str, data: Path, entity: str | None = None, again: bool = False
) -> str | None:
    """Log ``report`` to a new ``eval`` run named :func:`eval_run_name` and return the name; None (logging
    nothing) when every answer came from the cache and this same evaluation was already logged under that
    name in that project — unless ``again``."""
    from finetune_wb.tracking.model_artifact import eval_run_name, start_eval_run
    from finetune_wb.tracking.records import updating_record

    name = eval_run_name(data)
    key = f"{entity or ''}/{project}/{name}"
    fingerprint = eval_fingerprint(report)
    fully_cached = report.ok and all(m.n_requests == 0 for m in report.models)
    with updating_record(EVAL_RUNS_RECORD) as record:
        logged = fingerprint in record.get(key, [])
    if fully_cached and logged and not again:
        return None
    from finetune_wb.tracking.datasets import log_dataset

    run = start_eval_run(project=project, entity=entity, name=name, config={"data": str(data)})
    try:
        # the data is an input of the run: its own dataset artifact, logged in this project (never one of
        # another project found by digest), so the lineage names exactly what was evaluated
        log_dataset(data, run=run, split="test", validate=False, as_input=True)
        log_report(report, run)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    with updating_record(EVAL_RUNS_RECORD) as record:
        record[key] = [*[f for f in record.get(key, []) if f != fingerprint], fingerprint]
    return name
