"""Fine-tuning jobs: create (never twice), find by metadata, get, cancel, list, checkpoints.

Creating a job is the one call that must not simply be repeated: openai 3.x sends no idempotency key, so a
create whose response was lost (a 500 after the server made the job, a dropped connection) and is sent again
starts a second paid job. :func:`create_job` therefore turns the client's own retries off for that POST,
tags the request with a unique metadata value (``finetune_wb_request_id``) and, before every retry, looks
for a job carrying that tag; if one exists it is adopted instead of creating another.

Every other call here is safe to repeat and goes through the shared :class:`~finetune_wb._retry.RetryPolicy`.
Reading one job back is :mod:`finetune_wb.jobs.retrieval`, waiting :mod:`finetune_wb.jobs.waiting`, events
:mod:`finetune_wb.jobs.events` and the result file :mod:`finetune_wb.jobs.result_file`.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb._client import without_retries
from finetune_wb._retry import policy_or_default
from finetune_wb.errors import ConfigError, DataError, JobError
from finetune_wb.jobs.retrieval import job_id_of, retrieve_job, unknown_job_error
from finetune_wb.schema import TERMINAL_JOB_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types.fine_tuning import FineTuningJob
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

    from finetune_wb._retry import RetryPolicy
    from finetune_wb.jobs.registry import FileIndex
    from finetune_wb.providers.profiles import ProviderProfile
    from finetune_wb.schema import JobSpec

logger = logging.getLogger(__name__)

REQUEST_ID_KEY = "finetune_wb_request_id"
"""Metadata key carrying the unique id of one ``create_job`` call."""
_LOOKBACK_SECONDS = 600
"""When scanning unfiltered job lists for a tagged job, stop at jobs this much older than the create."""


# --------------------------------------------------------------------------------------------- create


def _resolve_file(
    file: str | os.PathLike[str] | None, *, client: Any, model: str | None, index: FileIndex | None
) -> str | None:
    """A file id as is; a local path is uploaded (validated, de-duplicated) and replaced by its id."""
    if file is None:
        return None
    if isinstance(file, os.PathLike) or Path(str(file)).is_file():
        from finetune_wb.jobs.upload import upload_file

        return upload_file(file, client=client, model=model, index=index).id
    text = str(file)
    if text.endswith((".jsonl", ".json")) or os.sep in text or "/" in text:
        raise DataError(f"cannot read {text}: no such file (pass a local JSONL path or a file id, file-...)")
    return text


def _create_params(
    spec: JobSpec | Mapping[str, Any], *, training_file: str, validation_file: str | None
) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        params = {k: v for k, v in spec.items() if v is not None}
        if "model" not in params:
            raise ConfigError("create_job needs a JobSpec or a mapping with at least 'model'")
        params["training_file"] = training_file
        if validation_file is not None:
            params["validation_file"] = validation_file
        return params
    return dict(spec.to_create_params(training_file=training_file, validation_file=validation_file))


def create_job(
    spec: JobSpec | Mapping[str, Any],
    *,
    training_file: str | os.PathLike[str],
    validation_file: str | os.PathLike[str] | None = None,
    client: openai.OpenAI | None = None,
    request_id: str | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    index: FileIndex | None = None,
    provider: str | ProviderProfile | None = None,
    today: datetime.date | None = None,
) -> FineTuningJob:
    """Create a fine-tuning job from a :class:`JobSpec`, never starting two jobs for one call.

    Args:
        spec: the job's model, method and hyperparameters (or a mapping of ``jobs.create`` arguments).
        training_file, validation_file: file ids, or local paths (uploaded with :func:`upload_file` first).
        client: ``openai.OpenAI`` / ``AzureOpenAI``; None builds one from the environment.
        request_id: the value of the ``finetune_wb_request_id`` metadata tag (default: a fresh UUID). Pass
            the same id again after a crash to adopt the job an earlier attempt created.
        retry, sleep: the retry policy and an injectable ``time.sleep``.
        index: for local paths, the second digest -> file id record :func:`upload_file` keeps up to date.
        provider, today: the provider profile the JobSpec is checked against before anything is uploaded
            (default: the one of ``client``'s base URL, see :func:`finetune_wb.providers.profile_for`) and
            the date its pre-flight checks use (see :func:`finetune_wb.providers.preflight_checks`).

    Returns:
        The created (or adopted) job.
    """
    from finetune_wb._client import get_client

    sleep = sleep or time.sleep
    policy = policy_or_default(retry, sleep)
    client = get_client(client)
    model = spec.get("model") if isinstance(spec, Mapping) else spec.model
    if not isinstance(spec, Mapping):
        from finetune_wb.providers.checks import profile_for
        from finetune_wb.providers.preflight_checks import preflight

        for warning in preflight(spec, provider=profile_for(client, provider=provider), today=today):
            logger.warning("%s", warning)
    training_id = _resolve_file(training_file, client=client, model=model, index=index)
    assert training_id is not None
    validation_id = _resolve_file(validation_file, client=client, model=model, index=index)
    params = _create_params(spec, training_file=training_id, validation_file=validation_id)

    caller_request_id = request_id
    request_id = request_id or uuid.uuid4().hex
    metadata = dict(params.get("metadata") or {})
    if REQUEST_ID_KEY not in metadata and len(metadata) >= 16:
        raise ConfigError(
            "the job's metadata already has 16 keys (the API's limit); finetune_wb needs one for "
            f"{REQUEST_ID_KEY!r} to guarantee a single job per request - drop one key"
        )
    metadata[REQUEST_ID_KEY] = request_id
    params["metadata"] = metadata

    if caller_request_id is not None:
        # A request id given by the caller may belong to an earlier, interrupted call: adopt its job.
        existing = _adopt_existing(client, caller_request_id, policy=policy, since=None, quiet=True)
        if existing is not None:
            return existing

    raw = without_retries(client)
    started = time.time()
    attempt = 0
    while True:
        attempt += 1
        try:
            job = raw.fine_tuning.jobs.create(**params)
            logger.info("created fine-tuning job %s (request %s)", job.id, request_id)
            return job  # type: ignore[no-any-return]
        except Exception as exc:
            if not policy.retry_on(exc):
                from finetune_wb.providers.preflight_checks import jobs_end_refusal

                refusal = jobs_end_refusal(exc)
                if refusal is not None:
                    raise refusal from exc
                raise
            delay = policy.wait_seconds(exc, attempt)
            last = attempt >= policy.max_attempts
            if not last:
                if policy.on_retry is not None:
                    policy.on_retry(exc, attempt, delay)
                logger.warning("creating the job failed (%s); retrying in %.1f s", exc, delay)
            # The server may have created the job before failing. Wait first (a job list can lag behind a
            # create that just happened), then look for the tagged job before sending the create again.
            sleep(delay)
            existing = _adopt_existing(client, request_id, policy=policy, since=started - _LOOKBACK_SECONDS)
            if existing is not None:
                return existing
            if last:
                logger.error(
                    "creating the job failed %d times (%s) and no job tagged %s=%s exists yet; to adopt one "
                    "that appears later instead of starting another, call create_job again with "
                    "request_id=%r",
                    attempt,
                    exc,
                    REQUEST_ID_KEY,
                    request_id,
                    request_id,
                )
                raise


def _adopt_existing(
    client: Any, request_id: str, *, policy: RetryPolicy, since: float | None, quiet: bool = False
) -> FineTuningJob | None:
    job = find_job_by_request_id(request_id, client=client, retry=policy, since=since)
    if job is not None and not quiet:
        logger.warning("adopting job %s created by an earlier attempt of request %s", job.id, request_id)
    elif job is not None:
        logger.info("adopting job %s already created for request %s", job.id, request_id)
    return job


def find_job_by_request_id(
    request_id: str,
    *,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
    since: float | None = None,
    max_pages: int = 5,
) -> FineTuningJob | None:
    """The job whose metadata carries ``finetune_wb_request_id == request_id``, or None.

    Asks the server with a metadata filter first. If the server rejects the filter or ignores it (returns
    jobs without the tag), scans the newest jobs instead, up to ``max_pages`` pages of 100, stopping at
    jobs created before ``since`` (Unix time).
    """
    found = _tagged_jobs(
        REQUEST_ID_KEY, request_id, client=client, retry=retry, max_pages=max_pages, since=since
    )
    return next(found, None)


def find_jobs_by_metadata(
    key: str,
    value: str,
    *,
    client: openai.OpenAI | None = None,
    retry: RetryPolicy | None = None,
    max_pages: int = 5,
) -> list[FineTuningJob]:
    """The recent jobs whose metadata has ``key == value``, newest first.

    Asks the server with a metadata filter first; if it rejects or ignores the filter, scans the newest
    ``max_pages`` pages of 100 jobs and keeps the matching ones.
    """
    return list(_tagged_jobs(key, value, client=client, retry=retry, max_pages=max_pages, since=None))


def _tagged_jobs(
    key: str,
    value: str,
    *,
    client: openai.OpenAI | None,
    retry: RetryPolicy | None,
    max_pages: int,
    since: float | None,
) -> Iterator[FineTuningJob]:
    """Jobs whose metadata has ``key == value``, newest first, fetched page by page as they are consumed."""
    import openai

    from finetune_wb._client import get_client

    policy = policy_or_default(retry, time.sleep)
    raw = without_retries(get_client(client))

    def tagged(job: Any) -> bool:
        return bool((getattr(job, "metadata", None) or {}).get(key) == value)

    try:
        jobs = list(policy.call(raw.fine_tuning.jobs.list, metadata={key: value}, limit=100).data)
        if all(tagged(job) for job in jobs):  # the filter works (an empty page too: nothing matches)
            yield from jobs
            return
    except openai.BadRequestError:
        pass  # the server does not support metadata filters: scan below
    after: str | None = None
    for _ in range(max_pages):
        kwargs: dict[str, Any] = {"limit": 100}
        if after is not None:
            kwargs["after"] = after
        page = policy.call(raw.fine_tuning.jobs.list, **kwargs)
        jobs = list(page.data)
        yield from (job for job in jobs if tagged(job))
        if not jobs or page.has_more is False:
            return
        if since is not None and min(j.created_at for j in jobs) < since:
            return
        after = jobs[-1].id


# --------------------------------------------------------------------------------------------- get/cancel/list


def get_job(
    job_id: str | FineTuningJob, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
) -> FineTuningJob:
    """The job as the server has it now (retried on transient failures).

    Raises:
        JobError: the server does not know ``job_id`` (the message names it and says how to find jobs).
    """
    from finetune_wb._client import get_client

    policy = policy_or_default(retry, time.sleep)
    return retrieve_job(job_id, client=without_retries(get_client(client)), policy=policy)


def cancel_job(
    job_id: str | FineTuningJob, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
) -> FineTuningJob:
    """Cancel a job and return it. Cancelling a job that already ended returns it unchanged."""
    import openai

    job_id = job_id_of(job_id)
    from finetune_wb._client import get_client

    policy = policy_or_default(retry, time.sleep)
    raw = without_retries(get_client(client))
    try:
        return policy.call(raw.fine_tuning.jobs.cancel, job_id)  # type: ignore[no-any-return]
    except openai.APIStatusError as exc:
        if exc.status_code == 404:
            raise unknown_job_error(job_id, exc, client=raw) from exc
        job = retrieve_job(job_id, client=raw, policy=policy)
        if job.status in TERMINAL_JOB_STATUSES:
            return job  # type: ignore[no-any-return]
        raise JobError(
            f"could not cancel fine-tuning job {job_id} (status {job.status}): {exc}", job_id
        ) from exc


def _paginate(
    fetch: Callable[..., Any],
    *,
    limit: int | None,
    page_size: int,
    keep: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Follow ``after`` cursors until ``has_more`` is false (or ``limit`` kept items are collected)."""
    items: list[Any] = []
    after: str | None = None
    while True:
        query: dict[str, Any] = {"limit": page_size}
        if after is not None:
            query["after"] = after
        page = fetch(**query)
        data = list(page.data)
        items.extend(item for item in data if keep is None or keep(item))
        if limit is not None and len(items) >= limit:
            return items[:limit]
        if not data or page.has_more is False:
            return items
        after = data[-1].id


def list_jobs(
    *,
    client: openai.OpenAI | None = None,
    status: str | Iterable[str] | None = None,
    metadata: Mapping[str, str] | None = None,
    limit: int | None = None,
    page_size: int = 100,
    retry: RetryPolicy | None = None,
) -> list[FineTuningJob]:
    """Every fine-tuning job (all pages, newest first), optionally filtered by status and metadata.

    ``metadata`` is sent as the server-side filter and checked again locally, so servers that ignore the
    filter give the same answer. ``limit`` caps the number of jobs returned (after filtering).
    """
    from finetune_wb._client import get_client

    policy = policy_or_default(retry, time.sleep)
    raw = without_retries(get_client(client))
    statuses = {status} if isinstance(status, str) else (set(status) if status is not None else None)
    wanted = dict(metadata or {})

    def keep(job: Any) -> bool:
        if statuses is not None and job.status not in statuses:
            return False
        have = getattr(job, "metadata", None) or {}
        return all(have.get(k) == v for k, v in wanted.items())

    def fetch(**query: Any) -> Any:
        if wanted:
            query["metadata"] = wanted
        return policy.call(raw.fine_tuning.jobs.list, **query)

    return _paginate(fetch, limit=limit, page_size=page_size, keep=keep)


def list_checkpoints(
    job_id: str | FineTuningJob, *, client: openai.OpenAI | None = None, retry: RetryPolicy | None = None
) -> list[FineTuningJobCheckpoint]:
    """Every checkpoint of a job (all pages, newest first)."""
    job_id = job_id_of(job_id)
    from finetune_wb._client import get_client

    policy = policy_or_default(retry, time.sleep)
    raw = without_retries(get_client(client))

    def fetch(**query: Any) -> Any:
        return policy.call(raw.fine_tuning.jobs.checkpoints.list, job_id, **query)

    import openai

    try:
        return _paginate(fetch, limit=None, page_size=100)
    except openai.NotFoundError as exc:
        raise unknown_job_error(job_id, exc, client=raw) from exc
