"""The fine-tune run of one job: live metrics from its events, then the result file, checkpoints, summary
and the model artifact.

``FineTuneTracker`` is an ``on_event`` callback for ``finetune_wb.jobs.wait_for_job``: it logs each metrics
event once, at its training step (``define_metric`` makes ``step`` the x-axis), and ``finalize(job)`` fills
the steps the events missed from the job's result file, logs the checkpoints, the summary and the model
artifact. A tracker finishes its run only when it started that run itself (``FineTuneTracker.start``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from finetune_wb._client import get_client, without_retries
from finetune_wb._retry import policy_or_default
from finetune_wb._secrets import register_client_secrets, scrub
from finetune_wb.errors import JobError, TrackingError
from finetune_wb.jobs.retrieval import describe_api_error, retrieve_job
from finetune_wb.tracking.artifacts import ArtifactRef
from finetune_wb.tracking.lineage import link_input
from finetune_wb.tracking.mode import is_disabled, is_offline, offline_hint, run_dir, start_run
from finetune_wb.tracking.model_artifact import log_model
from finetune_wb.tracking.results import (
    checkpoint_rows,
    dump_job,
    hyperparameters_of,
    job_config,
    job_error,
    result_file_table,
    result_rows,
    run_summary,
)
from finetune_wb.tracking.synced import remember_synced

logger = logging.getLogger("finetune_wb.tracking")

STEP_KEY = "step"
CHECKPOINT_COLUMNS: list[str | int] = ["step", "checkpoint", "id", "created_at", "metrics"]


class TrackedJob(BaseModel):
    """What ``FineTuneTracker.finalize`` recorded."""

    job_id: str
    status: str
    run_id: str | None = None
    run_dir: str | None = None
    offline: bool = True
    fine_tuned_model: str | None = None
    steps_from_events: list[int] = Field(default_factory=list)
    steps_from_result_file: list[int] = Field(default_factory=list)
    n_checkpoints: int = 0
    model_artifact: ArtifactRef | None = None
    adapter_artifact: ArtifactRef | None = None  # a local TRL job's adapter (tracking/adapter_artifact.py)
    error: dict[str, Any] | None = None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def event_step_metrics(event: Any) -> tuple[int | None, dict[str, float]]:
    """(step, metrics) of a JobEvent (``.step``/``.metrics``) or a raw OpenAI event (``type == "metrics"``)."""
    step = getattr(event, "step", None)
    metrics = getattr(event, "metrics", None)
    if metrics is None:
        data = getattr(event, "data", None) if not isinstance(event, Mapping) else event.get("data")
        kind = getattr(event, "type", None) if not isinstance(event, Mapping) else event.get("type")
        if isinstance(data, Mapping) and (kind == "metrics" or "step" in data):
            step = data.get("step", step)
            metrics = {k: v for k, v in data.items() if k != "step"}
    if step is None or not metrics:
        return None, {}
    clean = {str(k): f for k, v in metrics.items() if (f := _finite(v)) is not None}
    try:
        return int(step), clean
    except (TypeError, ValueError):
        return None, {}


class FineTuneTracker:
    """Track one fine-tuning job on a W&B run; call it with each JobEvent, then ``finalize(job)``."""

    def __init__(
        self,
        run: Any,
        *,
        job_id: str,
        spec: Any = None,
        datasets: Iterable[ArtifactRef] = (),
        estimated_billed_tokens: int | None = None,
        owns_run: bool = False,
        client: Any = None,
    ) -> None:
        if run is None:
            raise TrackingError(f"FineTuneTracker for job {job_id} needs a W&B run")
        self.run = run
        self.job_id = job_id
        self.spec = spec
        self.owns_run = owns_run
        self._client = client  # for reading the job back when it ends inside ``with`` (None: from env)
        self.datasets = list(datasets)
        self.estimated_billed_tokens = estimated_billed_tokens
        self.logged_steps: set[int] = set()
        self.steps_from_events: list[int] = []
        self.steps_from_result_file: list[int] = []
        self.last_metrics: dict[str, float] = {}
        self._defined: set[str] = set()
        self._finished = False
        self.offline = is_offline(run)
        config: dict[str, Any] = {"job_id": job_id}
        if spec is not None:
            config["spec"] = spec.model_dump(mode="json") if hasattr(spec, "model_dump") else dict(spec)
        run.config.update(scrub(config), allow_val_change=True)
        run.define_metric(STEP_KEY)
        for ref in self.datasets:
            link_input(run, ref)
        if self.offline:
            offline_hint(run)

    # -- construction that owns the run -------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        job: Any,
        *,
        project: str,
        entity: str | None = None,
        spec: Any = None,
        datasets: Iterable[ArtifactRef] = (),
        estimated_billed_tokens: int | None = None,
        tags: list[str] | None = None,
        dir: str | None = None,
        client: Any = None,
    ) -> FineTuneTracker:
        """Start a ``fine-tune`` run named after the job (config: spec + job fields) and track on it.

        ``job`` is a FineTuningJob or a job id. The tracker owns this run: ``finalize`` finishes it, with
        exit code 1 when the job failed or was cancelled.
        """
        job_id = job if isinstance(job, str) else job.id
        run = start_run(
            project=project,
            entity=entity,
            name=job_id,
            job_type="fine-tune",
            config=job_config(job, spec),
            tags=tags,
            dir=dir,
            what=f"job {job_id}",
        )
        return cls(
            run,
            job_id=job_id,
            spec=spec,
            datasets=datasets,
            estimated_billed_tokens=estimated_billed_tokens,
            owns_run=True,
            client=client,
        )

    def __enter__(self) -> FineTuneTracker:
        return self

    @property
    def finished(self) -> bool:
        """Whether this tracker has finished its run (only ever true for a run it started itself)."""
        return self._finished

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is not None and not self._finished and self._ended_job(exc):
            # wait_for_job raised JobFailed / JobCancelled for our job before finalize was called: record
            # the job as it ended (its own error, steps from the result file, checkpoints), exit code 1.
            try:
                self.finalize(self.job_id, client=self._client)
                return
            except Exception as inner:  # the API is unreachable too: fall back to the exception itself
                logger.warning("could not read job %s back after it ended: %s", self.job_id, inner)
        if exc is not None and not self._finished:
            self.record_error({"message": f"{type(exc).__name__}: {exc}"})
        self.finish(exit_code=1 if exc is not None else 0)

    def _ended_job(self, exc: BaseException) -> bool:
        from finetune_wb.errors import JobCancelled, JobFailed

        return isinstance(exc, (JobFailed, JobCancelled)) and getattr(exc, "job_id", None) == self.job_id

    # -- live metrics -------------------------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        """``on_event`` callback: log a metrics event once, at its step; other events are ignored."""
        step, metrics = event_step_metrics(event)
        if step is None or step in self.logged_steps:
            return
        total = metrics.pop("total_steps", None)  # a constant, not a curve: it goes to the summary
        if total is not None:
            self.run.summary["total_steps"] = int(total)
        self._log_step(step, metrics)
        self.steps_from_events.append(step)

    def _log_step(self, step: int, metrics: dict[str, float]) -> None:
        for key in metrics:
            if key not in self._defined:
                self.run.define_metric(key, step_metric=STEP_KEY)
                self._defined.add(key)
        self.run.log({STEP_KEY: step, **metrics})
        self.logged_steps.add(step)
        if not self.last_metrics or step >= max(self.logged_steps):
            self.last_metrics.update(metrics)

    # -- after the job ------------------------------------------------------------------------------------

    def finalize(self, job: Any, *, client: Any = None, finish: bool = True) -> TrackedJob:
        """Fill missed steps from the result file, log checkpoints, summary and (on success) the model.

        ``job`` is the final FineTuningJob (or its id, retrieved with ``client``). A failed or cancelled job
        gets its error in the summary; when this tracker started the run it finishes it with exit code 1.
        """
        client = get_client(client if client is not None else self._client)
        register_client_secrets(client)
        if isinstance(job, str):
            try:
                job = retrieve_job(job, client=without_retries(client), policy=policy_or_default(None))
            except Exception as exc:
                raise JobError(
                    describe_api_error(exc, client, f"could not read job {job} back"), job
                ) from exc
        try:
            return self._finalize(job, client, finish=finish)
        except Exception as exc:
            self.record_error({"message": f"tracking failed: {type(exc).__name__}: {exc}"})
            if finish:
                self.finish(exit_code=1)
            raise

    def _finalize(self, job: Any, client: Any, *, finish: bool) -> TrackedJob:
        run = self.run
        job_json = dump_job(job)
        status = str(job_json.get("status"))
        run.config.update(job_config(job, self.spec), allow_val_change=True)

        final_row: dict[str, float] = {}
        if job_json.get("result_files"):
            rows = result_rows(job, client=client)
            extra = result_file_table(rows, logged=set(self.last_metrics))
            if extra is not None:  # columns the events never carried (Azure's results.csv has several)
                run.log({"result_file": extra})
            for row in sorted(rows, key=lambda r: r.get(STEP_KEY, -1)):
                step = _finite(row.get(STEP_KEY))
                if step is None:
                    continue
                metrics = _event_names(
                    {k: f for k, v in row.items() if k != STEP_KEY and (f := _finite(v)) is not None}
                )
                final_row = metrics
                if int(step) not in self.logged_steps and metrics:
                    self._log_step(int(step), metrics)
                    self.steps_from_result_file.append(int(step))

        checkpoints = checkpoint_rows(job_json["id"], client=client)
        if checkpoints:
            import wandb

            table = wandb.Table(
                columns=CHECKPOINT_COLUMNS,
                data=[[r[str(c)] for c in CHECKPOINT_COLUMNS] for r in checkpoints],
            )
            run.log({"checkpoints": table})

        final_metrics = {**self.last_metrics, **final_row}
        estimated = self._estimated_billed_tokens(job_json)
        summary = run_summary(job_json, self.logged_steps, estimated, final_metrics)
        for key, value in scrub(summary).items():
            run.summary[key] = value

        model_artifact = adapter_artifact = None
        if status == "succeeded" and job_json.get("fine_tuned_model"):
            model_artifact = log_model(run, job_json, final_metrics=final_metrics, checkpoints=checkpoints)
            from finetune_wb.tracking.adapter_artifact import log_adapter

            adapter_artifact = log_adapter(run, job_json)

        error = None
        if status in ("failed", "cancelled"):
            error = job_error(job_json)
            self.record_error(error)
        result = TrackedJob(
            job_id=str(job_json["id"]),
            status=status,
            run_id=getattr(run, "id", None),
            run_dir=run_dir(run),
            offline=self.offline,
            fine_tuned_model=job_json.get("fine_tuned_model"),
            steps_from_events=sorted(self.steps_from_events),
            steps_from_result_file=sorted(self.steps_from_result_file),
            n_checkpoints=len(checkpoints),
            model_artifact=model_artifact,
            adapter_artifact=adapter_artifact,
            error=error,
        )
        self._remember_synced(result)
        if finish:
            self.finish(exit_code=1 if status in ("failed", "cancelled") else 0)
        return result

    def _remember_synced(self, result: TrackedJob) -> None:
        """A job tracked to its end counts as synced: ``finetune-wb sync`` will not log it a second time."""
        project = str(getattr(self.run, "project", "") or "")
        if not project or is_disabled(self.run):
            return
        remember_synced(
            result.job_id,
            project=project,
            entity=str(getattr(self.run, "entity", "") or "") or None,
            run_id=result.run_id,
            run_dir=result.run_dir,
            job_status=result.status,
            offline=result.offline,
        )

    def _estimated_billed_tokens(self, job_json: dict[str, Any]) -> int | None:
        """The caller's estimate, else the training dataset's: billed tokens per epoch x the job's epochs.

        The validator's own ``estimated_billed_tokens`` assumed its default epoch count; once the job says
        how many epochs it ran, per-epoch tokens times that number is the estimate to compare with the
        actual ``trained_tokens``.
        """
        if self.estimated_billed_tokens is not None:
            return self.estimated_billed_tokens
        n_epochs = hyperparameters_of(job_json).get("n_epochs")
        for ref in self.datasets:
            meta = ref.metadata
            if meta.get("split") != "train":
                continue
            per_epoch = (meta.get("tokens") or {}).get("billed_per_epoch")
            if isinstance(n_epochs, int) and isinstance(per_epoch, (int, float)):
                return int(per_epoch * n_epochs)
            if meta.get("estimated_billed_tokens") is not None:
                return int(meta["estimated_billed_tokens"])
        return None

    def record_error(self, error: dict[str, Any]) -> None:
        error = scrub(error)
        self.run.summary["error"] = error
        message = error.get("message") or error.get("code") or "unknown error"
        if error.get("status") == "cancelled":  # cancelled by someone: worth saying, not an error
            logger.warning("fine-tuning job %s was cancelled: %s", self.job_id, message)
            return
        logger.error("fine-tuning job %s: %s", self.job_id, message)

    def finish(self, *, exit_code: int = 0) -> None:
        """Finish the run if this tracker started it; never touches a caller's run."""
        if self.owns_run and not self._finished:
            self._finished = True
            self.run.finish(exit_code=exit_code)


# The result file calls the training token accuracy ``train_accuracy``; metrics events (and validation
# columns of both) say ``..._mean_token_accuracy``. One metric, one name, so each chart is one curve.
_RESULT_FILE_NAMES = {"train_accuracy": "train_mean_token_accuracy"}


def _event_names(metrics: dict[str, float]) -> dict[str, float]:
    """Result-file column names -> the metrics-event names (the column is kept when both are present)."""
    out = dict(metrics)
    for column, name in _RESULT_FILE_NAMES.items():
        if column in out and name not in out:
            out[name] = out.pop(column)
    return out
