"""Reading a fine-tuning job back from the server: the one retried ``jobs.retrieve``, and errors that say
what to check.

Waiting, ``get_job`` / ``cancel_job`` / ``job_metrics``, the W&B tracker and ``sync`` all read a job
through :func:`retrieve_job`, so each of them rides out a 429 or a 5xx the same way and names an unknown
job id the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune_wb._secrets import safe_url, scrub
from finetune_wb.errors import FineTuneError, JobError

if TYPE_CHECKING:  # pragma: no cover
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb._retry import RetryPolicy


def job_id_of(job: str | Any) -> str:
    """A job id from an id or a job object."""
    return job if isinstance(job, str) else str(job.id)


def server_of(client: Any) -> str:
    """The client's base URL as it may be shown: no user-info or query (either may hold a key)."""
    return safe_url(getattr(client, "base_url", None)) or "the API server"


def unknown_job_error(job_id: str, exc: BaseException, *, client: Any) -> JobError:
    """The error for a job id the server does not know (404), naming the id, the server and what to do."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    reason = error.get("message") if isinstance(error, dict) else None
    return JobError(
        f"no fine-tuning job {job_id} on {server_of(client)} (the server answered 404: {reason or exc}); "
        "check the id with `finetune-wb jobs` or list_jobs(), and that OPENAI_BASE_URL / the client point "
        "at the server and organisation that created the job",
        job_id=job_id,
    )


def retrieve_job(job: str | Any, *, client: Any, policy: RetryPolicy) -> FineTuningJob:
    """``jobs.retrieve`` for a job id or job object, retried by ``policy`` on transient failures.

    ``client`` is used as given: pass one with the openai client's own retries off
    (:func:`finetune_wb._client.without_retries`) so that ``policy`` is the one layer that repeats requests.

    Raises:
        JobError: the server does not know the job (404); the message names the id and the server.
    """
    import openai

    job_id = job_id_of(job)
    try:
        return policy.call(client.fine_tuning.jobs.retrieve, job_id)  # type: ignore[no-any-return]
    except openai.NotFoundError as exc:
        raise unknown_job_error(job_id, exc, client=client) from exc


def describe_api_error(exc: Exception, client: Any, what: str) -> str:
    """``what`` failed: the server's answer plus what to check, with no credential in it.

    An error finetune_wb already described (a :class:`~finetune_wb.errors.FineTuneError`, such as the
    :class:`JobError` of an unknown job) is kept as it is.
    """
    import openai

    if isinstance(exc, FineTuneError):
        return str(scrub(f"{what}: {exc}"))
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APIConnectionError):  # one wording for every command
        from finetune_wb._retry import describe_connection_error

        return str(scrub(f"{what}: {describe_connection_error(exc, server_of(client))}"))
    elif status == 401:
        hint = "the server refused the API key: check OPENAI_API_KEY (or the Azure key)"
    elif status == 403:
        hint = "the API key may not read fine-tuning jobs of this organization/project"
    elif status == 404:
        hint = "no such job on this server: list the jobs with `finetune-wb jobs`"
    else:
        hint = f"server {server_of(client)}"
    return str(scrub(f"{what}: {type(exc).__name__}: {exc} ({hint})"))
