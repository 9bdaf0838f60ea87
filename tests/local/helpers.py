"""Waiting on real training jobs (bounded) and asking models the toy task."""

from __future__ import annotations

import time
from typing import Any

from finetune_wb.schema import TERMINAL_JOB_STATUSES

#: hyperparameters that teach the tiny model the toy task in ~80 steps (full fine-tuning, with a base
#: learning rate of 1e-4: lr 5e-3)
TOY_HP = {"n_epochs": 8, "batch_size": 4, "learning_rate_multiplier": 50.0}


def wait_for(client: Any, job_id: str, *, until: Any = None, timeout: float = 150.0) -> Any:
    """Poll the job until ``until(job)`` (default: it ended); fail with its events on timeout."""
    until = until or (lambda j: j.status in TERMINAL_JOB_STATUSES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if until(job):
            return job
        time.sleep(0.2)
    events = [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=20).data]
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s; events: {events}")


def ask(client: Any, model: str, word: str) -> str:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"word: {word}"}]
    )
    return str(reply.choices[0].message.content)


def poll_until(cond: Any, what: str, timeout: float = 20.0) -> None:
    """Wait until ``cond()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")
