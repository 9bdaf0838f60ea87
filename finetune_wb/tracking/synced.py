"""Which jobs were already written to W&B, so that none is logged twice.

A local record (``state_dir()/tracking/synced_jobs.json``) maps ``entity/project`` to the jobs synced into
it (run id, run directory, job status, mode, time). Both :func:`finetune_wb.tracking.sync.sync_job` and a
:class:`~finetune_wb.tracking.runs.FineTuneTracker` that followed a job to its end write it; online, W&B's
own runs are asked as well.

The record is changed under a cross-process lock and written with a backup (``synced_jobs.json.bak``), used
when the main file does not parse. When both are lost, the record notes it (``__rebuild__``) and, the next
time W&B is online, each project's entries are rebuilt from its ``fine-tune`` runs (whose config names the
job id); offline, W&B is never asked.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from finetune_wb.schema import TERMINAL_JOB_STATUSES
from finetune_wb.tracking.mode import is_offline
from finetune_wb.tracking.records import take_lost, updating_record

logger = logging.getLogger("finetune_wb.tracking.sync")

DEFAULT_PROJECT = "openai-fine-tunes"
SYNC_RECORD = "synced_jobs.json"
REBUILD_KEY = "__rebuild__"
"""Top-level key of the record (never an ``entity/project`` key, which holds a '/'): since when it was lost,
and which projects were rebuilt from W&B since."""


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
    project, entity = default_project(project), default_entity(entity)
    with _updating() as data:
        _rebuild_if_lost(data, project, entity)
        return dict(data.get(record_key(project, entity), {}))


@contextmanager
def _updating() -> Iterator[dict[str, Any]]:
    """The record under its lock; a record found lost is marked for a rebuild from W&B."""
    with updating_record(SYNC_RECORD) as data:
        if take_lost(SYNC_RECORD):
            data[REBUILD_KEY] = {"lost_at": int(time.time()), "rebuilt": []}
        yield data


def _rebuild_if_lost(data: dict[str, Any], project: str, entity: str | None) -> None:
    """Online, after the record was lost: add what W&B knows of this project (once per project)."""
    marker = data.get(REBUILD_KEY)
    key = record_key(project, entity)
    if not isinstance(marker, dict) or key in marker.get("rebuilt", []) or is_offline():
        return
    found = _runs_in_wandb(project, entity)
    if found is None:
        return  # W&B could not be asked: try again next time
    bucket = data.setdefault(key, {})
    for job_id, entry in found.items():
        bucket.setdefault(job_id, entry)
    marker.setdefault("rebuilt", []).append(key)
    logger.warning(
        "rebuilt the local sync record of %s from W&B after it was lost: %d job(s) known as synced",
        key.lstrip("/"),
        len(found),
    )


def _runs_in_wandb(project: str, entity: str | None) -> dict[str, dict[str, Any]] | None:
    """Online only: job id -> entry for each finished ``fine-tune`` run of the project (None: not asked)."""
    import wandb

    try:
        api = wandb.Api()
        path = f"{entity or api.default_entity}/{project}"
        runs = list(api.runs(path, filters={"jobType": "fine-tune"}))
    except Exception as exc:  # no project yet, no access
        logger.warning("could not list the W&B runs of %s to rebuild the sync record: %s", project, exc)
        return None
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        config = getattr(run, "config", None) or {}
        summary = getattr(run, "summary", None) or {}
        job_id = config.get("job_id") or summary.get("job_id")
        status = summary.get("status")
        if not job_id or status not in TERMINAL_JOB_STATUSES:
            continue
        found[str(job_id)] = {
            "run_id": getattr(run, "id", None),
            "run_dir": None,
            "job_status": status,
            "offline": False,
            "synced_at": int(time.time()),
            "rebuilt_from_wandb": True,
        }
    return found


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
    with _updating() as data:
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
