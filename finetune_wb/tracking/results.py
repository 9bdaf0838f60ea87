"""Reading a finished job back from the API: plain-JSON job fields, result-file rows, checkpoints."""

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


def result_rows(job: Any, *, client: Any) -> list[dict[str, float]]:
    """Per-step rows of the job's result file(s); [] when there is none or it cannot be read."""
    from finetune_wb.jobs.operations import job_metrics

    try:
        return list(job_metrics(job, client=client))
    except Exception as exc:
        logger.warning("could not read the result file of job %s: %s", getattr(job, "id", "?"), exc)
        return []


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
