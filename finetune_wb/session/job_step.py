"""The session's job step: upload once, create the job once, wait for it with live W&B tracking.

These are the parts of :class:`~finetune_wb.session.facade.FineTuneSession` that talk to the fine-tuning API
and must survive a crash without paying twice: every id is written to the state file before the next call
that depends on it. Each step works on a :class:`~finetune_wb.session.context.StepContext`; the session's
methods hold its lock and call them.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError, JobError
from finetune_wb.schema import TERMINAL_JOB_STATUSES
from finetune_wb.session.data_step import validate_step
from finetune_wb.session.quality_step import QualityMode, quality_step
from finetune_wb.session.runs import artifact_ref

if TYPE_CHECKING:  # pragma: no cover
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb.schema import JobSpec
    from finetune_wb.session.context import StepContext

logger = logging.getLogger("finetune_wb.session")


def fine_tune_step(
    ctx: StepContext,
    spec: JobSpec | dict[str, Any],
    *,
    quality: QualityMode = "check",
    accept_quality: Iterable[str] = (),
    quality_options: Mapping[str, Any] | None = None,
) -> FineTuningJob:
    """Upload the training file once, log the dataset run, create the job once (validating first if needed).

    Before the upload the data-quality gate runs (:mod:`~finetune_wb.session.quality_step`)."""
    from finetune_wb.jobs.operations import create_job
    from finetune_wb.jobs.upload import upload_file
    from finetune_wb.schema import JobSpec

    if isinstance(spec, dict):
        from pydantic import ValidationError

        try:
            spec = JobSpec(**spec)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: "
                + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
                for err in exc.errors()
            )
            raise ConfigError(
                f"invalid JobSpec ({problems}); its fields are {', '.join(JobSpec.model_fields)}"
            ) from exc
    spec_json = spec.model_dump(mode="json")
    st = ctx.state
    if st.job_id:
        if st.spec is not None and st.spec != spec_json:
            raise ConfigError(
                f"session {st.session_id} already has job {st.job_id} with another spec; start a new "
                "session for a different job"
            )
        logger.info("session already has job %s; not creating another", st.job_id)
        return ctx.retrieve_job()

    from finetune_wb.providers.checks import profile_for
    from finetune_wb.providers.preflight_checks import preflight

    for warning in preflight(spec, provider=profile_for(ctx.client)):  # before anything is uploaded
        logger.warning("%s", warning)
    train_path = ctx.require_path("train")
    validation = st.validation or {}
    if not validation or validation.get("model") != spec.model or validation.get("digest") != st.train_digest:
        validate_step(
            ctx, model=spec.model, n_epochs=spec.n_epochs if isinstance(spec.n_epochs, int) else None
        )
    elif not validation.get("ok"):
        from finetune_wb.errors import DataValidationError

        raise DataValidationError(
            f"{train_path} has {validation.get('n_errors')} validation errors; fix them and prepare again",
            ctx.report,
        )
    quality_report = None
    if not st.training_file_id:
        quality_report = quality_step(ctx, mode=quality, accept=accept_quality, options=quality_options)
    elif st.train_artifact is None and ctx.runs.enabled and quality != "off":
        # uploaded before a crash: the gate was passed then; the report is only for the dataset artifact
        quality_report = quality_step(
            ctx, mode=quality, accept=accept_quality, options=quality_options, gate=False
        )
    st.spec = spec_json
    record_base_url(ctx)
    ctx.save()

    if not st.training_file_id:
        from finetune_wb.tracking.artifacts import ArtifactFileIndex  # W&B's record of this data's file id

        file = upload_file(
            train_path,
            client=ctx.client,
            model=spec.model,
            validate=False,
            progress=ctx.progress,
            index=ArtifactFileIndex(),
        )
        st.training_file_id = file.id
        ctx.save()
        logger.info("training file %s uploaded as %s", train_path, file.id)

    if st.train_artifact is None and ctx.runs.enabled:
        ctx.runs.log_datasets(
            train_path=train_path,
            test_path=ctx.require_path("test") if st.test_path else None,
            report=ctx.report,
            quality=quality_report,
        )
        ctx.save()

    if not st.job_request_id:
        st.job_request_id = f"{st.session_id}-{uuid.uuid4().hex[:8]}"
        ctx.save()
    job = create_job(spec, training_file=st.training_file_id, client=ctx.client, request_id=st.job_request_id)
    st.job_id = job.id
    st.job_status = job.status
    ctx.save()
    logger.info("fine-tuning job %s created (%s)", job.id, job.status)
    return job


def record_base_url(ctx: StepContext) -> None:
    """Remember which server the session talks to; warn when a resumed session talks to another one."""
    from finetune_wb._client import base_url_of
    from finetune_wb._secrets import safe_url

    base_url = base_url_of(ctx.client)
    st = ctx.state
    before = safe_url(st.base_url)  # a state written by an older version may hold user-info: never shown
    if before and before != base_url:
        logger.warning(
            "session %s was started against %s; this process talks to %s",
            st.session_id,
            before,
            base_url,
        )
    st.base_url = base_url


def wait_step(ctx: StepContext, *, timeout: float | None) -> FineTuningJob:
    """Wait for the session's job, streaming its events and metrics into a W&B ``fine-tune`` run."""
    from finetune_wb.jobs.waiting import wait_for_job

    st = ctx.state
    if not st.job_id:
        raise ConfigError("no job to wait for: call session.fine_tune(JobSpec(...)) first")
    if st.job_status in TERMINAL_JOB_STATUSES and (st.tracked or not ctx.runs.enabled):
        return finish_job(ctx, ctx.retrieve_job())

    tracker = None
    if ctx.runs.enabled:
        from finetune_wb.tracking.runs import FineTuneTracker

        run = ctx.runs.start("fine-tune", name=st.job_id, config={"job_id": st.job_id})
        datasets = [r for r in (artifact_ref(st.train_artifact),) if r is not None]
        tracker = FineTuneTracker(
            run,
            job_id=st.job_id,
            spec=ctx.spec(),
            datasets=datasets,
            estimated_billed_tokens=(st.validation or {}).get("billed_tokens"),
            owns_run=True,
        )
    try:
        job = wait_for_job(
            st.job_id,
            client=ctx.client,
            on_event=tracker,
            progress=ctx.progress,
            timeout=timeout,
            poll_interval=ctx.poll_interval,
        )
    except JobError as exc:
        if tracker is not None:
            from finetune_wb.errors import JobTimeout

            if isinstance(exc, JobTimeout):
                tracker.finish(exit_code=0)
            else:
                with contextlib.suppress(Exception):
                    tracker.finalize(ctx.retrieve_job(), client=ctx.client)
                st.tracked = True
                ctx.runs.finished("fine-tune")
        with contextlib.suppress(Exception):
            st.job_status = ctx.retrieve_job().status
        ctx.save()
        raise
    except BaseException:
        if tracker is not None:
            tracker.finish(exit_code=1)
        raise
    if tracker is not None:
        tracked = tracker.finalize(job, client=ctx.client)
        if tracked.model_artifact is not None:
            st.model_artifact = tracked.model_artifact.model_dump(mode="json")
        st.tracked = True
        ctx.runs.finished("fine-tune")
    return finish_job(ctx, job)


def finish_job(ctx: StepContext, job: FineTuningJob) -> FineTuningJob:
    """Record a finished job's outcome (status, fine-tuned model, trained tokens) in the state file."""
    st = ctx.state
    st.job_status = job.status
    st.fine_tuned_model = job.fine_tuned_model
    st.trained_tokens = getattr(job, "trained_tokens", None)
    ctx.save()
    logger.info("job %s %s -> %s", job.id, job.status, job.fine_tuned_model)
    return job
