"""Fine-tuning jobs -> W&B runs, including jobs started elsewhere (the successor of ``openai wandb sync``).

For each finished job: a ``fine-tune`` run named after the job, its training/validation files as dataset
artifacts (inputs), every metrics event at its step, the result file filling the steps the events missed,
checkpoints, summary and the model artifact. Failed and cancelled jobs get a run that records the error and
ends with exit code 1. Unlike wandb's ``WandbLogger.sync`` this follows every page of jobs, skips (rather
than stops at) jobs already synced, keeps going when one job fails, and works offline: whether a job was
synced is then decided from a local record under ``state_dir()``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from finetune_wb.tracking._common import is_disabled, is_offline, scrub, updating_record

logger = logging.getLogger("finetune_wb.sync")

DEFAULT_PROJECT = "openai-fine-tunes"
SYNC_RECORD = "synced_jobs.json"
TERMINAL = ("succeeded", "failed", "cancelled")

Outcome = Literal["synced", "already_synced", "not_finished", "failed"]


class SyncResult(BaseModel):
    """What happened to one job."""

    job_id: str
    outcome: Outcome = Field(
        description="synced (a run was written), already_synced (skipped), not_finished (job still "
        "running: nothing written), failed (the sync itself failed; see error)"
    )
    job_status: str | None = None
    project: str
    entity: str | None = None
    run_id: str | None = None
    run_dir: str | None = None
    offline: bool = True
    fine_tuned_model: str | None = None
    n_steps_logged: int = 0
    error: str | None = None


class SyncReport(BaseModel):
    """The outcome of ``sync_jobs``: one result per job, newest job first."""

    project: str
    entity: str | None = None
    results: list[SyncResult] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        """True when no job failed to sync."""
        return all(r.outcome != "failed" for r in self.results)


def _project(project: str | None) -> str:
    return project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT


def _entity(entity: str | None) -> str | None:
    return entity or os.environ.get("WANDB_ENTITY") or None


def _record_key(project: str, entity: str | None) -> str:
    return f"{entity or ''}/{project}"


def synced_record(*, project: str | None = None, entity: str | None = None) -> dict[str, dict[str, Any]]:
    """The local record of jobs synced into ``entity/project``: job id -> run id, status, time, mode."""
    with updating_record(SYNC_RECORD) as data:
        return dict(data.get(_record_key(_project(project), _entity(entity)), {}))


def _remember_synced(result: SyncResult) -> None:
    with updating_record(SYNC_RECORD) as data:
        bucket = data.setdefault(_record_key(result.project, result.entity), {})
        bucket[result.job_id] = {
            "run_id": result.run_id,
            "run_dir": result.run_dir,
            "job_status": result.job_status,
            "offline": result.offline,
            "synced_at": int(time.time()),
        }


def _synced_online(job_id: str, project: str, entity: str | None) -> bool:
    """Online only: does W&B already hold a finished run for this job?"""
    import wandb

    try:
        api = wandb.Api()
        path = f"{entity or api.default_entity}/{project}"
        runs = api.runs(path, filters={"display_name": job_id})
        return any((run.summary.get("status") in TERMINAL) for run in runs)
    except Exception as exc:  # no project yet, no access: fall back to the local record
        logger.debug("W&B runs query for %s failed: %s", job_id, exc)
        return False


def is_synced(job_id: str, *, project: str | None = None, entity: str | None = None) -> bool:
    """Whether the job was synced before: the local record, and (online only) W&B's runs."""
    project, entity = _project(project), _entity(entity)
    if job_id in synced_record(project=project, entity=entity):
        return True
    return False if is_offline() else _synced_online(job_id, project, entity)


def _raw(client: Any) -> Any:
    """The client with its own retries off: DEFAULT_RETRY is the one layer that repeats requests."""
    with_options = getattr(client, "with_options", None)
    return with_options(max_retries=0) if callable(with_options) else client


def _retrieve(job: Any, client: Any) -> Any:
    from finetune_wb._retry import DEFAULT_RETRY

    if isinstance(job, str):
        return DEFAULT_RETRY.call(_raw(client).fine_tuning.jobs.retrieve, job)
    return job


def _all_events(job_id: str, client: Any) -> list[Any]:
    """Every event of the job, oldest first (the API pages newest first)."""
    from finetune_wb._retry import DEFAULT_RETRY
    from finetune_wb.events import JobEvent

    events: list[Any] = []
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": 100}
        if after:
            kwargs["after"] = after
        page = DEFAULT_RETRY.call(_raw(client).fine_tuning.jobs.list_events, job_id, **kwargs)
        data = list(page.data)
        events.extend(data)
        if not data or not getattr(page, "has_more", False):
            break
        after = data[-1].id
    events.reverse()
    return [JobEvent.from_openai(e, job_id=job_id) for e in events]


def _dataset_inputs(run: Any, job: Any, client: Any, *, table_rows: int | None) -> list[str]:
    """Link (if known locally) or download-and-log the job's training and validation files.

    Returns the file ids that could not be read (a deleted file must not stop the sync).
    """
    from finetune_wb._retry import DEFAULT_RETRY
    from finetune_wb.tracking.datasets import cached_copy, find_artifact, link_input, log_dataset

    missing = []
    for split, file_id in (("train", job.training_file), ("validation", job.validation_file)):
        if not file_id:
            continue
        known = find_artifact(file_id=file_id, type_="dataset")
        if known is not None:
            link_input(run, known)
            continue
        try:
            response = DEFAULT_RETRY.call(_raw(client).files.content, file_id)
            data = response.content if hasattr(response, "content") else response.read()
        except Exception as exc:
            logger.warning("job %s: could not download %s file %s: %s", job.id, split, file_id, exc)
            missing.append(file_id)
            continue
        same = find_artifact(digest=hashlib.sha256(data).hexdigest(), type_="dataset")
        log_dataset(
            cached_copy(data),
            run=run,
            split=split,
            name=same.name if same is not None else f"{split}-{file_id}",
            file_name=f"{file_id}.jsonl",
            file_id=file_id,
            model=job.model,
            table_rows=table_rows,
            as_input=True,
        )
    return missing


def _wait_live(job_id: str, tracker: Any, client: Any, *, poll_interval: float) -> Any:
    """Follow a running job with the tracker as ``on_event``; the final job whatever its outcome."""
    from finetune_wb.errors import JobCancelled, JobFailed
    from finetune_wb.jobs import wait_for_job

    try:
        return wait_for_job(
            job_id, client=client, on_event=tracker, progress=False, poll_interval=poll_interval
        )
    except (JobFailed, JobCancelled):
        return _retrieve(job_id, client)


def sync_job(
    job_id: str | Any,
    *,
    project: str | None = None,
    entity: str | None = None,
    overwrite: bool = False,
    client: Any = None,
    log_data: bool = True,
    table_rows: int | None = 1000,
    wait: bool = False,
    poll_interval: float = 5.0,
) -> SyncResult:
    """Write one finished job to W&B as a ``fine-tune`` run (see the module docstring).

    ``job_id`` may also be a FineTuningJob. ``project`` defaults to ``$WANDB_PROJECT`` or
    "openai-fine-tunes", ``entity`` to ``$WANDB_ENTITY``. A job still running is ``not_finished`` unless
    ``wait``: then its run is started now and follows the job live until it ends. Never raises for a job-level problem: the result
    says ``failed`` with the error instead, so one job never stops the others.
    """
    from finetune_wb._client import get_client
    from finetune_wb.tracking.runs import FineTuneTracker

    project, entity = _project(project), _entity(entity)
    jid = job_id if isinstance(job_id, str) else str(getattr(job_id, "id", job_id))
    base = {"job_id": jid, "project": project, "entity": entity, "offline": is_offline()}
    if is_disabled():
        return SyncResult(
            outcome="failed",
            error="W&B is disabled (WANDB_MODE=disabled): there is nowhere to sync to; unset WANDB_MODE or "
            "set it to offline",
            **base,
        )
    try:
        client = get_client(client)
        job = _retrieve(job_id, client)
    except Exception as exc:
        return SyncResult(outcome="failed", error=scrub(f"could not retrieve job {jid}: {exc}"), **base)
    base["job_id"] = jid = job.id
    if job.status not in TERMINAL and not wait:
        return SyncResult(outcome="not_finished", job_status=job.status, **base)
    if not overwrite and is_synced(jid, project=project, entity=entity):
        previous = synced_record(project=project, entity=entity).get(jid, {})
        return SyncResult(
            outcome="already_synced", job_status=job.status, run_id=previous.get("run_id"), **base
        )

    tracker = None
    try:
        tracker = FineTuneTracker.start(job, project=project, entity=entity)
        run = tracker.run
        if log_data:
            missing = _dataset_inputs(run, job, client, table_rows=table_rows)
            if missing:
                run.summary["unavailable_files"] = missing
        if job.status not in TERMINAL:
            job = _wait_live(jid, tracker, client, poll_interval=poll_interval)
        for event in _all_events(jid, client):  # steps already logged live are skipped
            tracker(event)
        tracked = tracker.finalize(job, client=client)
    except Exception as exc:
        if tracker is not None:  # finalize already finished it on its own errors; this covers the rest
            tracker.record_error({"message": f"sync failed: {type(exc).__name__}: {exc}"})
            tracker.finish(exit_code=1)
        logger.error("could not sync job %s: %s", jid, exc)
        return SyncResult(
            outcome="failed",
            job_status=job.status,
            run_id=getattr(tracker.run, "id", None) if tracker else None,
            error=scrub(f"{type(exc).__name__}: {exc}"),
            **base,
        )
    result = SyncResult(
        outcome="synced",
        job_status=tracked.status,
        run_id=tracked.run_id,
        run_dir=tracked.run_dir,
        fine_tuned_model=tracked.fine_tuned_model,
        n_steps_logged=len(tracked.steps_from_events) + len(tracked.steps_from_result_file),
        error=(tracked.error or {}).get("message"),
        **base,
    )
    _remember_synced(result)
    return result


def sync_jobs(
    *,
    project: str | None = None,
    entity: str | None = None,
    overwrite: bool = False,
    limit: int | None = None,
    client: Any = None,
    page_size: int = 100,
    log_data: bool = True,
) -> SyncReport:
    """Sync every job (all pages, newest first; the first ``limit`` when given), skipping synced ones."""
    from finetune_wb._client import get_client
    from finetune_wb.jobs import list_jobs

    project, entity = _project(project), _entity(entity)
    client = get_client(client)
    jobs = list_jobs(client=client, limit=limit, page_size=page_size)
    report = SyncReport(project=project, entity=entity)
    for job in jobs:
        result = sync_job(
            job, project=project, entity=entity, overwrite=overwrite, client=client, log_data=log_data
        )
        report.results.append(result)
    return report
