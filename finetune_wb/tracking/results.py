"""A job as its fine-tune run records it: plain-JSON fields, run config, summary and error, and what is
read back from the API once it ended (result-file rows, checkpoints)."""

from __future__ import annotations

import json
import logging
from typing import Any

from finetune_wb._secrets import scrub

logger = logging.getLogger("finetune_wb.tracking")


def dump_job(job: Any) -> dict[str, Any]:
    """A FineTuningJob (or dict) as plain JSON, secrets removed."""
    if isinstance(job, dict):
        data = dict(job)
    elif hasattr(job, "model_dump"):
        data = job.model_dump(mode="json")
    else:
        raise TypeError(f"expected a FineTuningJob, got {type(job).__name__}")
    return scrub(data)  # type: ignore[no-any-return]


def hyperparameters_of(job_json: dict[str, Any]) -> dict[str, Any]:
    """The job's hyperparameters, from ``method.<type>.hyperparameters`` or the legacy top-level field."""
    method = job_json.get("method") or {}
    kind = method.get("type")
    hyper = ((method.get(kind) or {}) if kind else {}).get("hyperparameters") if kind else None
    hyper = hyper or job_json.get("hyperparameters") or {}
    return {k: v for k, v in hyper.items() if v is not None}


def job_error(job_json: dict[str, Any]) -> dict[str, Any]:
    """The error a failed or cancelled job's run records: code, message, param and status."""
    error = job_json.get("error") or {}
    status = job_json.get("status")
    out = {k: error.get(k) for k in ("code", "message", "param") if error.get(k) is not None}
    if not out.get("message"):
        out["message"] = f"job {job_json.get('id')} ended with status {status}"
    out["status"] = status
    return out


def run_summary(
    job_json: dict[str, Any], steps: set[int], estimated: int | None, final_metrics: dict[str, float]
) -> dict[str, Any]:
    """The fine-tune run's summary: status, models, tokens (billed and estimated), duration, final metrics."""
    created, finished = job_json.get("created_at"), job_json.get("finished_at")
    summary: dict[str, Any] = {
        "status": job_json.get("status"),
        "job_id": job_json.get("id"),
        "base_model": job_json.get("model"),
        "fine_tuned_model": job_json.get("fine_tuned_model"),
        "trained_tokens": job_json.get("trained_tokens"),
        "billed_tokens": job_json.get("trained_tokens"),
        "estimated_billed_tokens": estimated,
        "duration_seconds": (finished - created) if created and finished else None,
        "n_steps_logged": len(steps),
    }
    summary.update({f"final_{k}": v for k, v in final_metrics.items()})
    return {k: v for k, v in summary.items() if v is not None}


def job_config(job: Any, spec: Any) -> dict[str, Any]:
    """Run config: the JobSpec and the job's fields, plain JSON, plus flat keys for filtering."""
    config: dict[str, Any] = {}
    if spec is not None:
        config["spec"] = spec.model_dump(mode="json") if hasattr(spec, "model_dump") else dict(spec)
    if not isinstance(job, str):
        job_json = dump_job(job)
        config["job"] = job_json
        config.update(
            {
                "job_id": job_json.get("id"),
                "base_model": job_json.get("model"),
                "method": (job_json.get("method") or {}).get("type") or "supervised",
                "hyperparameters": hyperparameters_of(job_json),
                "training_file": job_json.get("training_file"),
                "validation_file": job_json.get("validation_file"),
            }
        )
    else:
        config["job_id"] = job
    return scrub(config)


def result_rows(job: Any, *, client: Any) -> list[dict[str, float]]:
    """Per-step rows of the job's result file(s); [] when there is none or it cannot be read."""
    from finetune_wb.jobs.result_file import job_metrics

    try:
        return list(job_metrics(job, client=client))
    except Exception as exc:
        logger.warning("could not read the result file of job %s: %s", getattr(job, "id", "?"), exc)
        return []


def result_file_table(rows: list[dict[str, float]], *, logged: set[str]) -> Any:
    """A W&B Table of every result-file row when the file has columns the live metrics never logged
    (Azure's ``validation_mean_token_accuracy``, ``full_valid_loss``, ...), so none is lost; else None."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    known = logged | {"step", "train_accuracy"}
    if not rows or all(c in known for c in columns):
        return None
    import wandb

    ordered: list[str | int] = (
        ["step", *[c for c in columns if c != "step"]] if "step" in columns else [*columns]
    )
    return wandb.Table(columns=ordered, data=[[row.get(str(c)) for c in ordered] for row in rows])


def checkpoint_rows(job_id: str, *, client: Any) -> list[dict[str, Any]]:
    """Every checkpoint of the job (all pages), oldest step first, as plain rows."""
    from finetune_wb.jobs.operations import list_checkpoints

    try:
        items = list_checkpoints(job_id, client=client)
    except Exception as exc:
        logger.warning("could not list the checkpoints of job %s: %s", job_id, exc)
        return []
    rows = []
    for cp in items:
        data = cp.model_dump(mode="json") if hasattr(cp, "model_dump") else dict(cp)
        metrics = {k: v for k, v in (data.get("metrics") or {}).items() if v is not None}
        rows.append(
            {
                "step": data.get("step_number"),
                "checkpoint": data.get("fine_tuned_model_checkpoint"),
                "id": data.get("id"),
                "created_at": data.get("created_at"),
                "metrics": json.dumps(metrics, sort_keys=True),
            }
        )
    return sorted(rows, key=lambda r: r["step"] or 0)
