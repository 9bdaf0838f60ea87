"""What a session step may use: :class:`StepContext`, the explicit state a step works on.

A step is a plain function ``step(ctx, ...)`` in this package (:mod:`.data_step`, :mod:`.job_step`,
:mod:`.eval_step`). :class:`~finetune_wb.session.facade.FineTuneSession` owns one context
(``session.context``), takes its locks (:meth:`StepContext.locked`: the thread lock and the state file's
cross-process lock, then re-reads the state file) and calls the step with it; the step never imports the
facade. A step

* reads and changes ``ctx.state`` and calls ``ctx.save()`` after each change that must survive a crash
  (an id is saved *before* the call that depends on it);
* talks to the fine-tuning API through ``ctx.client`` (built from the environment on first use);
* starts W&B runs through ``ctx.runs`` (``ctx.runs.enabled`` is False when W&B is disabled);
* finds the session's files with ``ctx.data_dir`` / ``ctx.require_path("train")``;
* shows progress bars only when ``ctx.progress`` is set;
* leaves what it computed for the later steps of this process in ``ctx.report`` (the last validation
  report) and ``ctx.last_eval`` (the last evaluation report): they are not in the state file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_wb.errors import ConfigError, FineTuneError
from finetune_wb.session.runs import SessionRuns
from finetune_wb.session.state import SessionState, load_state, save_state, state_lock

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb.evaluation import EvalReport
    from finetune_wb.schema import JobSpec
    from finetune_wb.validation.validate import ValidationReport


@dataclass(eq=False)
class StepContext:
    """The state, files, client, W&B runs and settings that the session's steps work on."""

    state: SessionState
    """The session's state; written to ``state_path`` by :meth:`save`."""
    state_path: Path
    runs: SessionRuns
    """Starts the session's W&B runs (one per step) and records them in ``state.wandb_runs``."""
    openai_client: openai.OpenAI | None = None
    """The client given to the session; None until :attr:`client` first builds one from the environment."""
    progress: bool = False
    poll_interval: float = 1.0
    report: ValidationReport | None = None
    last_eval: EvalReport | None = None
    lock_timeout: float | None = None
    """How long a step waits for another process working on the same state file (None: as long as it takes)."""
    entity: str | None = None
    """The W&B entity this process was given; kept over what :meth:`reload` reads."""

    def save(self) -> None:
        """Write the state file atomically (a crash leaves the previous version or this one)."""
        save_state(self.state, self.state_path)

    def reload(self) -> None:
        """Re-read the state file in place (``state`` stays the same object): another process may have moved on.

        A missing file (deleted meanwhile) keeps the state in memory; the next :meth:`save` writes it again.
        The validation report of this process is dropped when the training data changed.
        """
        if not self.state_path.exists():
            return
        fresh = load_state(self.state_path)
        if fresh.train_digest != self.state.train_digest:
            self.report = None
        for name in SessionState.model_fields:
            setattr(self.state, name, getattr(fresh, name))
        if self.entity is not None:
            self.state.entity = self.entity

    @contextmanager
    def locked(
        self,
        step: str,
        *,
        timeout: float | None = None,
        error: Callable[[str], BaseException] = FineTuneError,
    ) -> Iterator[None]:
        """Hold the state file's cross-process lock for ``step`` and re-read the state under it.

        A second process on the same state file waits here until the first one's step is done, then acts on
        what that step recorded (the job it created, the data it prepared) instead of repeating it.
        ``timeout`` (default :attr:`lock_timeout`) bounds the wait; then ``error`` is raised with a message
        that names the file and the process holding it.
        """
        with state_lock(
            self.state_path,
            step=step,
            timeout=self.lock_timeout if timeout is None else timeout,
            error=error,
        ):
            self.reload()
            yield

    @property
    def client(self) -> openai.OpenAI:
        """The OpenAI client (built from the environment on first use when none was given)."""
        if self.openai_client is None:
            from finetune_wb._client import get_client

            self.openai_client = get_client(None)
        return self.openai_client

    @property
    def data_dir(self) -> Path:
        """Directory beside the state file that holds the train/test JSONL and the evaluation cache."""
        return self.state_path.with_name(f"{self.state_path.stem}-data")

    def require_path(self, split: str) -> Path:
        """The session's ``split`` ("train" or "test") file; a :class:`ConfigError` saying why it is missing."""
        value = getattr(self.state, f"{split}_path")
        if not value:
            raise ConfigError(f"no {split} data yet: call session.prepare(records, template=...) first")
        path = Path(value)
        if not path.is_file():
            raise ConfigError(f"the session's {split} file {path} is missing (state file {self.state_path})")
        return path

    def retrieve_job(self) -> FineTuningJob:
        """The session's job as the server sees it now."""
        if not self.state.job_id:
            raise ConfigError("no job yet: call session.fine_tune(JobSpec(...)) first")
        from finetune_wb.jobs.operations import get_job  # the one retried read of a job

        return get_job(self.state.job_id, client=self.client)

    def spec(self) -> JobSpec | None:
        """The session's JobSpec, once :meth:`FineTuneSession.fine_tune` has recorded one."""
        if not self.state.spec:
            return None
        from finetune_wb.schema import JobSpec

        return JobSpec.model_validate(self.state.spec)
