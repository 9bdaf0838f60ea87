"""Pause and resume a fine-tuning job (Azure OpenAI's ``/fine_tuning/jobs/{id}/pause`` and ``/resume``).

A paused job keeps its progress and its checkpoints (which can be deployed meanwhile); resuming continues
from where it stopped. Both calls are safe to repeat: pausing a job that is already paused (or resuming one
that already runs again) returns the job as it is, so a retry after a lost answer changes nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from finetune_wb._client import without_retries
from finetune_wb._retry import RetryPolicy, policy_or_default
from finetune_wb.errors import JobError
from finetune_wb.jobs.retrieval import job_id_of, retrieve_job, unknown_job_error

if TYPE_CHECKING:
    import openai
    from openai.types.fine_tuning import FineTuningJob

_ALREADY = {"pause": ("paused",), "resume": ("running", "queued", "validating_files", "succeeded")}
_FROM = {"pause": "running", "resume": "paused"}


def _act(action: str, job_id: str | Any, client: Any, retry: RetryPolicy | None) -> FineTuningJob:
    import openai

    from finetune_wb._client import get_client

    job_id = job_id_of(job_id)
    policy = policy_or_default(retry, time.sleep)
    raw = without_retries(get_client(client))
    try:
        return policy.call(getattr(raw.fine_tuning.jobs, action), job_id)  # type: ignore[no-any-return]
    except openai.APIStatusError as exc:
        if exc.status_code == 404:
            raise unknown_job_error(job_id, exc, client=raw) from exc
        job = retrieve_job(job_id, client=raw, policy=policy)
        if job.status in _ALREADY[action]:
            return job  # type: ignore[no-any-return]
        raise JobError(
            f"could not {action} fine-tuning job {job_id}: it is {job.status}, and only a {_FROM[action]} job "
            f"can be {action}d ({exc})",
            job_id,
        ) from exc


def pause_job(
    job_id: str | FineTuningJob, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
) -> FineTuningJob:
    """Pause a running job and return it (a job already paused is returned unchanged)."""
    return _act("pause", job_id, client, retry)


def resume_job(
    job_id: str | FineTuningJob, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
) -> FineTuningJob:
    """Resume a paused job and return it (a job that runs again is returned unchanged)."""
    return _act("resume", job_id, client, retry)
