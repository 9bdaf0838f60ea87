"""Waiting for a fine-tuning job: back-off polling, new events only, each handed over once.

Each poll reads the job (:func:`~finetune_wb.jobs.retrieval.retrieve_job`), then the events newer than
the last one delivered (:class:`~finetune_wb.jobs.events.EventCursor`), so no callback ever sees the same
event twice within one wait.

Attaching to a job that is already running (after a restart, from another process) is the same call:
``wait_for_job("ftjob-...")``. The cursor crosses processes as one string: the id of the last event the
caller handled (``event.id`` in a callback, or ``JobTimeout.last_event_id``). Pass it back as
``after_event_id`` and only the events after it are delivered, each once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import JobCancelled, JobError, JobFailed, JobTimeout
from finetune_wb.jobs.events import EventCursor, JobEvent
from finetune_wb.jobs.retrieval import job_id_of, retrieve_job
from finetune_wb.schema import TERMINAL_JOB_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb._retry import RetryPolicy

logger = logging.getLogger(__name__)

EventCallback = Callable[[JobEvent], Any]


def _callbacks(on_event: EventCallback | Sequence[EventCallback] | None) -> list[EventCallback]:
    if on_event is None:
        return []
    if callable(on_event):
        return [on_event]
    return list(on_event)


class _JobProgress:
    """The tqdm bar: steps done out of total_steps, with status and the latest loss."""

    def __init__(self, job_id: str, *, enabled: bool) -> None:
        from finetune_wb._progress import progress_bar

        self.bar = progress_bar(total=None, desc=job_id, disable=not enabled, unit="step")
        self.total: int | None = None
        self.postfix: dict[str, str] = {}

    def update(self, job: Any, events: Iterable[JobEvent]) -> None:
        step = None
        for event in events:
            if event.step is None:
                continue
            step = event.step
            if event.total_steps and event.total_steps != self.total:
                self.total = event.total_steps
                self.bar.total = self.total
            for key in ("train_loss", "valid_loss"):
                if key in event.metrics:
                    self.postfix[key.replace("train_", "")] = f"{event.metrics[key]:.4f}"
        if step is not None and step > self.bar.n:
            self.bar.update(step - self.bar.n)
        self.postfix["status"] = str(getattr(job, "status", "?"))
        self.bar.set_postfix(self.postfix, refresh=True)

    def close(self) -> None:
        self.bar.close()


def _raise_for_terminal(job: Any) -> None:
    job_id = job.id
    if job.status == "failed":
        error = getattr(job, "error", None)
        code = getattr(error, "code", None) if error is not None else None
        message = getattr(error, "message", None) if error is not None else None
        param = getattr(error, "param", None) if error is not None else None
        detail = f"[{code}] {message}" if code else (message or "no reason given")
        if param:
            detail += f" (param: {param})"
        raise JobFailed(
            f"fine-tuning job {job_id} failed: {detail}",
            job_id=job_id,
            code=code,
            error_message=message,
            param=param,
        )
    if job.status == "cancelled":
        raise JobCancelled(f"fine-tuning job {job_id} was cancelled", job_id=job_id)


def wait_for_job(
    job_id: str | Any,
    *,
    client: openai.OpenAI | None = None,
    poll_interval: float = 1.0,
    max_poll_interval: float = 30.0,
    backoff: float = 1.5,
    timeout: float | None = None,
    on_event: EventCallback | Sequence[EventCallback] | None = None,
    progress: bool = True,
    after_event_id: str | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> FineTuningJob:
    """Wait until a fine-tuning job ends, handing each new event to ``on_event`` once, oldest first.

    Polling starts every ``poll_interval`` seconds and grows by ``backoff`` up to ``max_poll_interval``;
    it drops back to the fast interval whenever the job changes status. Every request is retried on
    transient failures (429, 5xx, timeouts, dropped connections).

    Args:
        job_id: the job (id or job object) to wait for; works the same for a job created elsewhere.
        on_event: a callable or a list of callables receiving :class:`JobEvent` objects.
        progress: show a tqdm bar (widget in notebooks) with step / total_steps, loss and status.
        timeout: give up after this many seconds (the job keeps running) with :class:`JobTimeout`.
        after_event_id: skip this event and everything older (events a previous wait delivered).
        retry, sleep, clock: injectable policy, ``time.sleep`` and ``time.monotonic`` for tests.

    Returns:
        The final ``FineTuningJob`` (status ``succeeded``).

    Raises:
        JobFailed: the job failed (``.code`` / ``.error_message`` from the job's error).
        JobCancelled: the job was cancelled.
        JobTimeout: ``timeout`` passed first; the job keeps running. Its ``last_event_id`` attribute is the
            id of the last event delivered (None if none was): re-attach with
            ``wait_for_job(job_id, after_event_id=exc.last_event_id)`` to get only the events after it.
        JobError: the server does not know ``job_id`` (404).
    """
    from finetune_wb._client import get_client, without_retries
    from finetune_wb._retry import policy_or_default

    job_id = job_id_of(job_id)
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    # Waiting is read-only, so it can afford to be patient: ~12 tries ride out a few minutes of outage.
    policy = retry if retry is not None else replace(policy_or_default(None, sleep), max_attempts=12)
    raw = without_retries(get_client(client))
    callbacks = _callbacks(on_event)
    cursor = EventCursor(job_id, after_event_id=after_event_id, policy=policy, client=raw)
    bar: _JobProgress | None = None
    start = clock()
    interval = poll_interval
    last_status: str | None = None
    try:
        while True:
            job = retrieve_job(job_id, client=raw, policy=policy)
            # Events are fetched after the job: once the job is terminal, its last events are in this batch.
            events = cursor.fetch_new(mark=False)
            for event in events:
                for callback in callbacks:
                    callback(event)
                # Marked only once every callback has it: after Ctrl-C or a callback error mid-batch, the
                # cursor (and the re-attach hint) point at the last event really delivered.
                cursor.mark_delivered(event)
            if bar is None:  # only once the job is known, so a wrong id shows no empty bar
                bar = _JobProgress(job_id, enabled=progress)
            bar.update(job, events)
            if job.status in TERMINAL_JOB_STATUSES:
                _raise_for_terminal(job)
                return job  # type: ignore[no-any-return]
            if job.status != last_status:
                last_status = job.status
                interval = poll_interval
            elapsed = clock() - start
            if timeout is not None and elapsed >= timeout:
                raise _timeout_error(job_id, job.status, elapsed, cursor.last_id)
            delay = interval if timeout is None else max(0.0, min(interval, timeout - elapsed))
            sleep(delay)
            interval = min(interval * backoff, max_poll_interval)
    except JobError:
        raise  # the job ended or the wait timed out: the exception says everything
    except BaseException as exc:  # Ctrl-C, a callback that raised, a request that kept failing
        logger.warning(
            "stopped waiting for %s (%s); the job keeps running. %s",
            job_id,
            type(exc).__name__,
            _reattach_hint(job_id, cursor.last_id),
        )
        raise
    finally:
        if bar is not None:
            bar.close()


def _reattach_hint(job_id: str, last_event_id: str | None) -> str:
    if last_event_id is None:
        return f'Re-attach with wait_for_job("{job_id}") or `finetune-wb wait {job_id}`.'
    return (
        f'Re-attach with wait_for_job("{job_id}", after_event_id="{last_event_id}") or '
        f"`finetune-wb wait {job_id} --after-event {last_event_id}` to receive only the events after the "
        "last one delivered (without it, every event is delivered again)."
    )


def _timeout_error(job_id: str, status: str, elapsed: float, last_event_id: str | None) -> JobTimeout:
    """JobTimeout saying how to re-attach; ``.last_event_id`` is the cursor to pass back."""
    error = JobTimeout(
        f"stopped waiting for fine-tuning job {job_id} after {elapsed:.0f} s (status: {status}); the job "
        f"keeps running on the server. {_reattach_hint(job_id, last_event_id)} Stop it with "
        f"`finetune-wb cancel {job_id}`.",
        job_id=job_id,
    )
    error.last_event_id = last_event_id  # type: ignore[attr-defined]
    return error
