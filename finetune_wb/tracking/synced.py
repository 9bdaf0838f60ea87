"""Which jobs were already written to W&B, so that none is logged twice.

A local record (``state_dir()/tracking/synced_jobs.json``) maps ``entity/project`` to the jobs synced into
it (run id, run directory, job status, mode, time). Both :func:`finetune_wb.tracking.sync.sync_job` and a
:class:`~finetune_wb.tracking.runs.FineTuneTracker` that followed a job to its end write it; online, W&B's
own runs are asked as well.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from finetune_wb.schema import TERMINAL_JOB_STATUSES
from finetune_wb.tracking.mode import is_offline
from finetune_wb.tracking.records import updating_record

logger = logging.getLogger("finetune_wb.tracking.sync")

DEFAULT_PROJECT = "openai-fine-tunes"
SYNC_RECORD = "synced_jobs.json"


def default_project(project: str | None) -> str:
    """``project``, else ``$WANDB_PROJECT``, else "openai-fine-tunes"."""
    return project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT


def default_entity(entity: str | None) -> str | None:
    """``entity``, else ``$WANDB_ENTITY``, else None (W&B's default entity)."""
    return entity or os.environ.get("WANDB_ENTITY") or None


def record_key(project: str, entity: str | None) -> str:
    """The record's key for a project: ``entity/project`` (``/project`` without an entity)."""
    return f"{entity or ''}/{project}"


def synced_record(*, project: str | None = None, entity: str | None = None) -> dict[str, dict[str, Any]]:
    """The local record of jobs synced into ``entity/project``: job id -> run id, status, time, mode."""
    with updating_record(SYNC_RECORD) as data:
        return dict(data.get(record_key(default_project(project), default_entity(entity)), {}))


def remember_synced(
    job_id: str,
    *,
    project: str,
    entity: str | None,
    run_id: str | None,
    run_dir: str | None,
    job_status: str | None,
    offline: bool,
) -> None:
    """Record that ``job_id`` was written to ``entity/project`` as run ``run_id``."""
    with updating_record(SYNC_RECORD) as data:
        bucket = data.setdefault(record_key(project, entity), {})
        bucket[job_id] = {
            "run_id": run_id,
            "run_dir": run_dir,
            "job_status": job_status,
            "offline": offline,
            "synced_at": int(time.time()),
        }


def _synced_online(job_id: str, project: str, entity: str | None) -> bool:
    """Online only: does W&B already hold a finished run for this job?"""
    import wandb

    try:
        api = wandb.Api()
        path = f"{entity or api.default_entity}/{project}"
        runs = api.runs(path, filters={"display_name": job_id})
        return any((run.summary.get("status") in TERMINAL_JOB_STATUSES) for run in runs)
    except Exception as exc:  # no project yet, no access: fall back to the local record
        logger.debug("W&B runs query for %s failed: %s", job_id, exc)
        return False


def is_synced(job_id: str, *, project: str | None = None, entity: str | None = None) -> bool:
    """Whether the job was synced before: the local record, and (online only) W&B's runs."""
    project, entity = default_project(project), default_entity(entity)
    if job_id in synced_record(project=project, entity=entity):
        return True
    return False if is_offline() else _synced_online(job_id, project, entity)
