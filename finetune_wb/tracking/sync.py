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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, computed_field

from finetune_wb._client import without_retries
from finetune_wb._paths import process_lock
from finetune_wb._retry import policy_or_default
from finetune_wb._secrets import register_client_secrets, scrub
from finetune_wb.jobs.events import job_events
from finetune_wb.jobs.retrieval import describe_api_error, retrieve_job
from finetune_wb.schema import TERMINAL_JOB_STATUSES
from finetune_wb.tracking.mode import is_disabled, is_offline, run_dir
from finetune_wb.tracking.synced import (
    default_entity,
    default_project,
    is_synced,
    record_key,
    remember_synced,
    synced_record,
)

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb._retry import RetryPolicy

logger = logging.getLogger("finetune_wb.tracking.sync")

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
    message: str | None = Field(
        default=None, description="what happened, in words (e.g. why nothing was written and what to do)"
    )


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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """True when no job failed to sync (the CLI's exit code 0)."""
        return all(r.outcome != "failed" for r in self.results)


_DISABLED = "W&B is disabled (WANDB_MODE=disabled): there is nowhere to sync to; unset WANDB_MODE or set it to offline"


def _current(job: Any, client: Any, policy: RetryPolicy) -> Any:
    """The job as the server has it now; a finished job object from a listing is used as it is."""
    if isinstance(job, str) or getattr(job, "status", None) not in TERMINAL_JOB_STATUSES:
        return retrieve_job(job, client=client, policy=policy)  # a listing can be stale: ask again
    return job


def spec_from_job(job: Any) -> Any:
    """A JobSpec describing a job started elsewhere (its hyperparameters as the server resolved them).

    None when the job's fields do not fit a JobSpec (an unknown method, say): the run config still holds
    every field of the job under ``job``.
    """
    from finetune_wb.schema import JobSpec
    from finetune_wb.tracking.results import dump_job, hyperparameters_of

    data = dump_job(job)
    method = (data.get("method") or {}).get("type") or "supervised"
    hyper = hyperparameters_of(data)
    fields: dict[str, Any] = {
        "model": data.get("model"),
        "method": method,
        "suffix": data.get("user_provided_suffix"),
        "seed": data.get("seed"),
        "metadata": data.get("metadata") or {},
        "integrations": data.get("integrations") or [],
    }
    for key in ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"):
        if hyper.get(key) is not None:
            fields[key] = hyper[key]
    if method == "reinforcement":
        fields["grader"] = ((data.get("method") or {}).get("reinforcement") or {}).get("grader")
        fields["reinforcement_hyperparameters"] = {
            k: v for k, v in hyper.items() if k not in ("n_epochs", "batch_size", "learning_rate_multiplier")
        }
    try:
        return JobSpec.model_validate({k: v for k, v in fields.items() if v is not None})
    except Exception as exc:  # pydantic's ValidationError: keep syncing without a spec
        logger.info(
            "job %s does not fit a JobSpec (%s); config keeps the job's fields only", data.get("id"), exc
        )
        return None


def _dataset_inputs(
    run: Any, job: Any, raw: Any, *, policy: RetryPolicy, table_rows: int | None
) -> tuple[list[str], list[Any]]:
    """Link (if known locally) or download-and-log the job's training and validation files.

    Returns the file ids that could not be read (a deleted file must not stop the sync) and the
    ArtifactRefs of the files that could.
    """
    from finetune_wb.tracking.artifacts import find_artifact
    from finetune_wb.tracking.datasets import cached_copy, log_dataset
    from finetune_wb.tracking.lineage import link_input

    missing: list[str] = []
    refs: list[Any] = []
    for split, file_id in (("train", job.training_file), ("validation", job.validation_file)):
        if not file_id:
            continue
        known = find_artifact(file_id=file_id, type_="dataset")
        if known is not None and known.project not in (None, getattr(run, "project", None)):
            known = None  # logged in another project: this project gets its own artifact
        if known is not None:
            # its role in this job (the bytes may have been logged under another split)
            known = known.model_copy(update={"metadata": {**known.metadata, "split": split}})
            refs.append(link_input(run, known))
            continue
        try:
            response = policy.call(raw.files.content, file_id)
            data = response.content if hasattr(response, "content") else response.read()
        except Exception as exc:
            logger.warning("job %s: could not download %s file %s: %s", job.id, split, file_id, exc)
            missing.append(file_id)
            continue
        same = find_artifact(digest=hashlib.sha256(data).hexdigest(), type_="dataset")
        if same is not None and same.project not in (None, getattr(run, "project", None)):
            same = None  # the same bytes in another project: not an artifact of this one
        if same is not None:  # these bytes were logged before (under another file id): no new version
            # this job's file id, not the earlier upload's (which may be deleted or on another server)
            same = same.model_copy(
                update={
                    "file_id": file_id,
                    "metadata": {**same.metadata, "split": split, "openai_file_id": file_id},
                }
            )
            refs.append(link_input(run, same))
            continue
        ref = log_dataset(
            cached_copy(data),
            run=run,
            split=split,
            name=f"{split}-{file_id}",
            file_name=f"{file_id}.jsonl",
            file_id=file_id,
            model=job.model,
            table_rows=table_rows,
            as_input=True,
        )
        refs.append(ref)
    return missing, refs


def _wait_live(
    job_id: str, tracker: Any, client: Any, *, policy: RetryPolicy, poll_interval: float, progress: bool
) -> Any:
    """Follow a running job with the tracker as ``on_event``; the final job whatever its outcome."""
    from finetune_wb.errors import JobCancelled, JobFailed
    from finetune_wb.jobs.waiting import wait_for_job

    try:
        return wait_for_job(
            job_id, client=client, on_event=tracker, progress=progress, poll_interval=poll_interval
        )
    except (JobFailed, JobCancelled):
        return retrieve_job(job_id, client=without_retries(client), policy=policy)


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
    progress: bool = False,
) -> SyncResult:
    """Write one finished job to W&B as a ``fine-tune`` run (see the module docstring).

    ``job_id`` may also be a FineTuningJob. ``project`` defaults to ``$WANDB_PROJECT`` or
    "openai-fine-tunes", ``entity`` to ``$WANDB_ENTITY``. A job still running is ``not_finished`` unless
    ``wait``: then its run is started now and follows the job live until it ends. Never raises for a
    job-level problem: the result says ``failed`` with the error instead, so one job never stops the others.
    Every request is retried on transient failures (429, 5xx, dropped connections).
    """
    from finetune_wb._client import get_client

    project, entity = default_project(project), default_entity(entity)
    jid = job_id if isinstance(job_id, str) else str(getattr(job_id, "id", job_id))
    base = {"job_id": jid, "project": project, "entity": entity, "offline": is_offline()}
    if is_disabled():
        return SyncResult(
            outcome="failed",
            error=_DISABLED,
            **base,
        )
    try:
        client = get_client(client)
    except Exception as exc:  # no credentials: ConfigError says which variables to set
        return SyncResult(outcome="failed", error=str(scrub(str(exc))), **base)
    register_client_secrets(client)
    policy = policy_or_default(None, time.sleep)
    raw = without_retries(client)
    try:
        job = _current(job_id, raw, policy)
    except Exception as exc:
        error = describe_api_error(exc, client, f"could not retrieve job {jid}")
        return SyncResult(outcome="failed", error=error, message=error, **base)
    base["job_id"] = jid = job.id
    if job.status not in TERMINAL_JOB_STATUSES and not wait:
        return SyncResult(
            outcome="not_finished",
            job_status=job.status,
            message=f"job {jid} is {job.status}: nothing written; sync it again once it has ended, or "
            f"follow it live with `finetune-wb sync --id {jid} --wait` (wait=True)",
            **base,
        )
    where = record_key(project, entity).lstrip("/")
    # One process at a time writes a run for this job into this project; the next one waits here and then
    # finds the job synced (the OS drops the lock of a process that dies, so a crash never leaves it stuck).
    with process_lock(
        _sync_lock_file(project, entity, jid),
        timeout=None,
        what=f"the W&B sync of job {jid} into {where}",
    ):
        return _sync_locked(
            job,
            jid,
            base,
            client=client,
            raw=raw,
            policy=policy,
            overwrite=overwrite,
            log_data=log_data,
            table_rows=table_rows,
            poll_interval=poll_interval,
            progress=progress,
        )


def _sync_lock_file(project: str, entity: str | None, job_id: str) -> Path:
    """``<state_dir>/tracking/locks/sync-<digest>.lock``: one lock per (entity/project, job)."""
    from finetune_wb.errors import ConfigError
    from finetune_wb.tracking.records import records_dir

    digest = hashlib.sha256(f"{record_key(project, entity)}\n{job_id}".encode()).hexdigest()[:24]
    folder = records_dir() / "locks"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create {folder} ({exc.strerror or exc}); set FINETUNE_WB_HOME to a writable directory"
        ) from exc
    return folder / f"sync-{digest}.lock"


def _sync_locked(
    job: Any,
    jid: str,
    base: dict[str, Any],
    *,
    client: Any,
    raw: Any,
    policy: RetryPolicy,
    overwrite: bool,
    log_data: bool,
    table_rows: int | None,
    poll_interval: float,
    progress: bool,
) -> SyncResult:
    """The part of :func:`sync_job` that runs under the job's sync lock: check the record, write the run."""
    from finetune_wb.tracking.runs import FineTuneTracker

    project, entity = base["project"], base["entity"]
    if not overwrite and is_synced(jid, project=project, entity=entity):
        previous = synced_record(project=project, entity=entity).get(jid, {})
        return SyncResult(
            outcome="already_synced",
            job_status=job.status,
            run_id=previous.get("run_id"),
            run_dir=previous.get("run_dir"),
            fine_tuned_model=job.fine_tuned_model,
            message=f"job {jid} was synced to {record_key(project, entity).lstrip('/')} before; "
            "--overwrite (overwrite=True) syncs it again",
            **base,
        )

    tracker = None
    try:
        tracker = FineTuneTracker.start(job, project=project, entity=entity, spec=spec_from_job(job))
        run = tracker.run
        if log_data:
            missing, refs = _dataset_inputs(run, job, raw, policy=policy, table_rows=table_rows)
            tracker.datasets.extend(refs)
            if missing:
                run.summary["unavailable_files"] = missing
        if job.status not in TERMINAL_JOB_STATUSES:
            job = _wait_live(
                jid, tracker, client, policy=policy, poll_interval=poll_interval, progress=progress
            )
        for event in job_events(jid, client=raw, policy=policy):  # steps already logged live are skipped
            tracker(event)
        tracked = tracker.finalize(job, client=client)
    except KeyboardInterrupt:  # Ctrl-C while following a job: the run must not end as a success
        if tracker is not None and not tracker.finished:
            tracker.record_error({"message": f"interrupted before job {jid} was synced to its end"})
            tracker.finish(exit_code=1)
        raise
    except Exception as exc:
        if tracker is not None:  # finalize already finished it on its own errors; this covers the rest
            tracker.record_error({"message": f"sync failed: {type(exc).__name__}: {exc}"})
            tracker.finish(exit_code=1)
        logger.error("could not sync job %s: %s", jid, exc)
        error = str(scrub(f"{type(exc).__name__}: {exc}"))
        return SyncResult(
            outcome="failed",
            job_status=job.status,
            run_id=getattr(tracker.run, "id", None) if tracker else None,
            run_dir=run_dir(tracker.run) if tracker else None,
            error=error,
            message=f"the sync of job {jid} failed ({error}); its run records the error and ends with "
            "exit code 1; fix the cause and sync again",
            **base,
        )
    if tracked.status == "succeeded":
        message = f"job {jid} synced: run {tracked.run_id}, model {tracked.fine_tuned_model}"
    else:
        message = f"job {jid} {tracked.status}: its run records the error and ends with exit code 1"
    result = SyncResult(
        outcome="synced",
        message=message,
        job_status=tracked.status,
        run_id=tracked.run_id,
        run_dir=tracked.run_dir,
        fine_tuned_model=tracked.fine_tuned_model,
        n_steps_logged=len(tracked.steps_from_events) + len(tracked.steps_from_result_file),
        error=(tracked.error or {}).get("message"),
        **base,
    )
    remember_synced(
        jid,
        project=project,
        entity=entity,
        run_id=result.run_id,
        run_dir=result.run_dir,
        job_status=result.job_status,
        offline=result.offline,
    )
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
    wait: bool = False,
    poll_interval: float = 5.0,
    progress: bool = False,
) -> SyncReport:
    """Sync every job (all pages, newest first; the first ``limit`` when given), skipping synced ones.

    Running jobs are ``not_finished`` (nothing written) unless ``wait``: then each is followed live until
    it ends, one after the other. A job whose sync fails is reported and the others go on.
    """
    from finetune_wb._client import get_client
    from finetune_wb.errors import ConfigError, FineTuneError, JobError
    from finetune_wb.jobs.operations import list_jobs

    if is_disabled():  # before listing: every job would fail the same way
        raise ConfigError(_DISABLED)
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be 0 or more (the number of most recent jobs to sync), got {limit}")
    project, entity = default_project(project), default_entity(entity)
    client = get_client(client)
    register_client_secrets(client)
    try:
        jobs = list_jobs(client=client, limit=limit, page_size=page_size)
    except FineTuneError:
        raise
    except Exception as exc:
        raise JobError(describe_api_error(exc, client, "could not list the fine-tuning jobs")) from exc
    report = SyncReport(project=project, entity=entity)
    for job in jobs:
        result = sync_job(
            job,
            project=project,
            entity=entity,
            overwrite=overwrite,
            client=client,
            log_data=log_data,
            wait=wait,
            poll_interval=poll_interval,
            progress=progress,
        )
        report.results.append(result)
    return report
