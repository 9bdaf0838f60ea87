"""What a session step may use: :class:`StepContext`, the explicit state a step works on.

A step is a plain function ``step(ctx, ...)`` in this package (:mod:`.data_step`, :mod:`.job_step`,
:mod:`.eval_step`). :class:`~finetune_wb.session.facade.FineTuneSession` owns one context
(``session.context``), takes its lock and calls the step with it; the step never imports the facade. A step

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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_wb.errors import ConfigError
from finetune_wb.session.runs import SessionRuns
from finetune_wb.session.state import SessionState, save_state

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

    def save(self) -> None:
        """Write the state file atomically (a crash leaves the previous version or this one)."""
        save_state(self.state, self.state_path)

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
