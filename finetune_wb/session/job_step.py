"""The session's job step: upload once, create the job once, wait for it with live W&B tracking.

These are the parts of :class:`~finetune_wb.session.facade.FineTuneSession` that talk to the fine-tuning API and
must survive a crash without paying twice: every id is written to the state file before the next call
that depends on it. The session's methods hold its lock and call these functions.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import ConfigError, JobError
from finetune_wb.schema import TERMINAL_JOB_STATUSES
from finetune_wb.session.runs import artifact_ref, log_session_datasets

if TYPE_CHECKING:  # pragma: no cover
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb.schema import JobSpec
    from finetune_wb.session.facade import FineTuneSession

logger = logging.getLogger("finetune_wb.session")


def fine_tune_step(session: FineTuneSession, spec: JobSpec | dict[str, Any]) -> FineTuningJob:
    """Body of :meth:`FineTuneSession.fine_tune` (the caller holds the session's lock)."""
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
    st = session.state
    if st.job_id:
        if st.spec is not None and st.spec != spec_json:
            raise ConfigError(
                f"session {st.session_id} already has job {st.job_id} with another spec; start a new "
                "session for a different job"
            )
        logger.info("session already has job %s; not creating another", st.job_id)
        return session._retrieve_job()

    train_path = session._require_path("train")
    validation = st.validation or {}
    if not validation or validation.get("model") != spec.model or validation.get("digest") != st.train_digest:
        session.validate(model=spec.model, n_epochs=spec.n_epochs if isinstance(spec.n_epochs, int) else None)
    elif not validation.get("ok"):
        from finetune_wb.errors import DataValidationError

        raise DataValidationError(
            f"{train_path} has {validation.get('n_errors')} validation errors; fix them and prepare again",
            session._report,
        )
    st.spec = spec_json
    record_base_url(session)
    session._save()

    if not st.training_file_id:
        file = upload_file(
            train_path, client=session.client, model=spec.model, validate=False, progress=session.progress
        )
        st.training_file_id = file.id
        session._save()
        logger.info("training file %s uploaded as %s", train_path, file.id)

    if st.train_artifact is None and session._tracking:
        log_session_datasets(
            st,
            session.state_path,
            train_path=train_path,
            test_path=session._require_path("test") if st.test_path else None,
            report=session._report,
            mode=session.wandb_mode,
            wandb_dir=session.wandb_dir,
        )
        session._save()

    if not st.job_request_id:
        st.job_request_id = f"{st.session_id}-{uuid.uuid4().hex[:8]}"
        session._save()
    job = create_job(
        spec, training_file=st.training_file_id, client=session.client, request_id=st.job_request_id
    )
    st.job_id = job.id
    st.job_status = job.status
    session._save()
    logger.info("fine-tuning job %s created (%s)", job.id, job.status)
    return job


def record_base_url(session: FineTuneSession) -> None:
    """Remember which server the session talks to; warn when a resumed session talks to another one."""
    from finetune_wb._client import base_url_of

    base_url = base_url_of(session.client)
    st = session.state
    if st.base_url and st.base_url != base_url:
        logger.warning(
            "session %s was started against %s; this process talks to %s",
            st.session_id,
            st.base_url,
            base_url,
        )
    st.base_url = base_url


def wait_step(session: FineTuneSession, *, timeout: float | None) -> FineTuningJob:
    """Body of :meth:`FineTuneSession.wait` (the caller holds the session's lock)."""
    from finetune_wb.jobs.waiting import wait_for_job

    st = session.state
    if not st.job_id:
        raise ConfigError("no job to wait for: call session.fine_tune(JobSpec(...)) first")
    if st.job_status in TERMINAL_JOB_STATUSES and (st.tracked or not session._tracking):
        return finish_job(session, session._retrieve_job())

    tracker = None
    if session._tracking:
        from finetune_wb.tracking import FineTuneTracker

        run = session._init_run("fine-tune", name=st.job_id, config={"job_id": st.job_id})
        datasets = [r for r in (artifact_ref(st.train_artifact),) if r is not None]
        tracker = FineTuneTracker(
            run,
            job_id=st.job_id,
            spec=session._spec(),
            datasets=datasets,
            estimated_billed_tokens=(st.validation or {}).get("billed_tokens"),
            owns_run=True,
        )
    try:
        job = wait_for_job(
            st.job_id,
            client=session.client,
            on_event=tracker,
            progress=session.progress,
            timeout=timeout,
            poll_interval=session.poll_interval,
        )
    except JobError as exc:
        if tracker is not None:
            from finetune_wb.errors import JobTimeout

            if isinstance(exc, JobTimeout):
                tracker.finish(exit_code=0)
            else:
                with contextlib.suppress(Exception):
                    tracker.finalize(session._retrieve_job(), client=session.client)
                st.tracked = True
        with contextlib.suppress(Exception):
            st.job_status = session._retrieve_job().status
        session._save()
        raise
    except BaseException:
        if tracker is not None:
            tracker.finish(exit_code=1)
        raise
    if tracker is not None:
        tracked = tracker.finalize(job, client=session.client)
        if tracked.model_artifact is not None:
            st.model_artifact = tracked.model_artifact.model_dump(mode="json")
        st.tracked = True
    return finish_job(session, job)


def finish_job(session: FineTuneSession, job: FineTuningJob) -> FineTuningJob:
    """Record a finished job's outcome (status, fine-tuned model, trained tokens) in the state file."""
    st = session.state
    st.job_status = job.status
    st.fine_tuned_model = job.fine_tuned_model
    st.trained_tokens = getattr(job, "trained_tokens", None)
    session._save()
    logger.info("job %s %s -> %s", job.id, job.status, job.fine_tuned_model)
    return job
