"""FineTuneSession: the whole chain — prepare, validate, fine-tune, wait, evaluate — with resumable state.

The session only composes the library's plain functions (``build_examples``, ``validate_file``,
``upload_file``, ``create_job``, ``wait_for_job``, ``log_dataset``, ``FineTuneTracker``, ``evaluate``). What
it adds is a small JSON *state file*, rewritten atomically after every step, so that a process that dies —
a notebook kernel, a worker killed by its supervisor — continues with :meth:`FineTuneSession.resume`:

* the training file is uploaded once (its id is saved before the job is created);
* the job is created once (a request id is saved *before* ``create_job`` is called, and ``create_job``
  adopts the job an interrupted call already created under that id);
* answers the evaluation already received come from its SQLite cache, whose path is in the state.

Fit for services: the session prints nothing (it logs to ``finetune_wb.session``; progress bars only with
``progress=True``, or by default in a Jupyter notebook), keeps no global state, and guards its own state with a
lock. Use one session per thread (or per job); sessions in different threads do not share anything but the
disk.

Safe when two processes (or two session objects) use one state file: every step holds the state file's
cross-process lock (``<state file>.lock``, an OS file lock that dies with its holder) and re-reads the file
under it, so the second process waits for the first one's step and then adopts what it recorded — the same
upload, the same job — instead of paying again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from finetune_wb.errors import ConfigError, FineTuneError, JobTimeout
from finetune_wb.session.context import StepContext
from finetune_wb.session.data_step import (
    as_template,
    examples_of,
    prepare_step,
    use_files_step,
    validate_step,
)
from finetune_wb.session.job_step import fine_tune_step, wait_step
from finetune_wb.session.quality_step import quality_step
from finetune_wb.session.runs import SessionRuns
from finetune_wb.session.state import SessionState, WandbMode, load_state, state_lock

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types.fine_tuning import FineTuningJob
    from typing_extensions import Unpack

    from finetune_wb.data.template import Template
    from finetune_wb.evaluation import EvalOptions, EvalReport
    from finetune_wb.evaluation.options import SessionEvalKwargs
    from finetune_wb.schema import ChatExample, JobSpec, PreferenceExample
    from finetune_wb.session.overview import SessionSummary
    from finetune_wb.validation.quality_report import QualityReport
    from finetune_wb.validation.validate import ValidationReport

logger = logging.getLogger("finetune_wb.session")


def _file_safe(text: str) -> str:
    """``text`` reduced to characters that are safe in a file name on every platform."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-.")
    return cleaned[:60] or "session"


class FineTuneSession:
    """Prepare data, validate, fine-tune, wait and evaluate — one object, one resumable state file.

    Args:
        project: the W&B project every run of this session goes to.
        client: an ``openai.OpenAI`` / ``AzureOpenAI`` (or any compatible server's client); None builds one
            from the environment when first needed.
        state_path: the JSON state file. An existing file is loaded (the session continues); None creates
            a new file under ``state_dir()/sessions/``. Data files sit beside it in ``<stem>-data/``.
        wandb_mode: "online", "offline" or "disabled" (no W&B runs at all); None follows ``WANDB_MODE``,
            and writes offline when no W&B credentials are available (never a login prompt).
        entity: the W&B entity (team or user).
        wandb_dir: where W&B writes its run directories (default: ``WANDB_DIR`` or the working directory).
        progress: show progress bars (uploads, the job, the evaluation). None (the default) shows them in a
            Jupyter notebook — widgets with ipywidgets, plain text lines without — and nowhere else: services
            and scripts log.
        poll_interval: first interval between job polls, in seconds.
        lock_timeout: how long a step waits while another process works on the same state file, in seconds
            (logged as a warning); None (the default) waits as long as that takes. Past it the step raises
            :class:`FineTuneError` (``wait``: :class:`JobTimeout`) naming the file and the other process.
    """

    def __init__(
        self,
        project: str = "finetune-wb",
        *,
        client: openai.OpenAI | None = None,
        state_path: str | os.PathLike[str] | None = None,
        wandb_mode: WandbMode | None = None,
        entity: str | None = None,
        wandb_dir: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        poll_interval: float = 1.0,
        lock_timeout: float | None = None,
    ) -> None:
        if wandb_mode not in (None, "online", "offline", "disabled"):
            raise ConfigError(
                f"wandb_mode must be 'online', 'offline', 'disabled' or None, got {wandb_mode!r}"
            )
        self._lock = threading.RLock()
        if state_path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            from finetune_wb._paths import state_dir

            state_path = (
                state_dir() / "sessions" / f"{_file_safe(project)}-{stamp}-{uuid.uuid4().hex[:6]}.json"
            )
        path = Path(state_path).expanduser().resolve()
        existing = path.exists()
        if existing:
            state = self._existing_state(path, project, entity)
        else:
            state = SessionState(project=project, entity=entity)
        runs = SessionRuns(
            state,
            path,
            mode=wandb_mode,
            wandb_dir=str(wandb_dir) if wandb_dir is not None else None,
        )
        if progress is None:
            from finetune_wb._progress import default_progress

            progress = default_progress()
        self.context = StepContext(
            state,
            path,
            runs,
            openai_client=client,
            progress=progress,
            poll_interval=poll_interval,
            lock_timeout=lock_timeout,
            entity=entity,
        )
        """What the session's steps work on (:mod:`finetune_wb.session.context`)."""
        if existing:
            logger.info("session %s continues from %s", state.session_id, path)
            return
        try:
            # Another process may create the same file at the same moment: the first one's file wins.
            with state_lock(path, step="create", timeout=lock_timeout):
                if path.exists():
                    self.context.reload()
                    self._existing_state(path, project, entity, state=state)
                    logger.info("session %s continues from %s", state.session_id, path)
                    return
                self.context.save()
        except OSError as exc:
            raise ConfigError(
                f"cannot write the session state file {path}: {exc.strerror or exc}; "
                "pass a state_path in a writable directory"
            ) from exc
        logger.info("session %s: new state file %s", state.session_id, path)

    @staticmethod
    def _existing_state(
        path: Path, project: str, entity: str | None, *, state: SessionState | None = None
    ) -> SessionState:
        """The state saved at ``path`` (or ``state``, already read from it), checked against ``project``."""
        state = state if state is not None else load_state(path)
        if state.project != project and project != "finetune-wb":
            raise ConfigError(
                f"{path} belongs to project {state.project!r}, not {project!r}; "
                "pass another state_path for a new session"
            )
        if entity is not None:
            state.entity = entity
        return state

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        client: openai.OpenAI | None = None,
        wandb_mode: WandbMode | None = None,
        wandb_dir: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        poll_interval: float = 1.0,
        lock_timeout: float | None = None,
    ) -> FineTuneSession:
        """Continue the session saved at ``path``: no second upload, no second job, cached eval answers."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"cannot resume: no session state file at {path}")
        state = load_state(path)
        return cls(
            state.project,
            client=client,
            state_path=path,
            wandb_mode=wandb_mode,
            entity=state.entity,
            wandb_dir=wandb_dir,
            progress=progress,
            poll_interval=poll_interval,
            lock_timeout=lock_timeout,
        )

    # -- what the steps share (the context) -----------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The session's state, as saved in ``state_path`` after every step."""
        return self.context.state

    @property
    def state_path(self) -> Path:
        """The JSON state file (absolute)."""
        return self.context.state_path

    @property
    def project(self) -> str:
        return self.state.project

    @property
    def data_dir(self) -> Path:
        """Directory beside the state file that holds the train/test JSONL and the evaluation cache."""
        return self.context.data_dir

    @property
    def client(self) -> openai.OpenAI:
        """The OpenAI client (built from the environment on first use when none was given)."""
        return self.context.client

    @property
    def progress(self) -> bool:
        return self.context.progress

    @progress.setter
    def progress(self, value: bool) -> None:
        self.context.progress = value

    @property
    def poll_interval(self) -> float:
        return self.context.poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        self.context.poll_interval = value

    @property
    def wandb_mode(self) -> WandbMode | None:
        return self.context.runs.mode

    @wandb_mode.setter
    def wandb_mode(self, value: WandbMode | None) -> None:
        self.context.runs.mode = value

    @property
    def wandb_dir(self) -> str | None:
        return self.context.runs.wandb_dir

    @wandb_dir.setter
    def wandb_dir(self, value: str | None) -> None:
        self.context.runs.wandb_dir = value

    @contextlib.contextmanager
    def _step(
        self,
        name: str,
        *,
        lock_timeout: float | None = None,
        error: Callable[[str], BaseException] = FineTuneError,
    ) -> Iterator[None]:
        """Run step ``name`` under the session's thread lock and the state file's cross-process lock."""
        from finetune_wb.tracking.mode import hint_to_logger_only

        with self._lock, self.context.locked(name, timeout=lock_timeout, error=error):
            started = time.monotonic()
            logger.info("session %s: %s ...", self.state.session_id, name)
            quiet = hint_to_logger_only.set(True)  # the session prints nothing, the W&B offline hint included
            try:
                yield
            finally:
                hint_to_logger_only.reset(quiet)
            logger.info(
                "session %s: %s done in %.1f s", self.state.session_id, name, time.monotonic() - started
            )

    # -- data -----------------------------------------------------------------------------------------------

    def prepare(
        self,
        records: Any,
        *,
        template: Template | dict[str, Any],
        n_train: int | None = None,
        train_fraction: float | None = None,
        seed: int = 42,
        stratify: bool = True,
        group_near_duplicates: bool = False,
    ) -> tuple[list[ChatExample], list[ChatExample]]:
        """Build chat examples from ``records`` with ``template``, split them, and write both splits.

        ``records``: a list of dicts, a pandas DataFrame, a Hugging Face Dataset / DatasetDict or a path —
        or the ChatExamples already built from them with ``template`` (they are split as they are).
        With neither ``n_train`` nor ``train_fraction``, 80 % go to training. Calling ``prepare`` again with
        the same data changes nothing; with different data after a job exists it raises
        :class:`ConfigError` (start a new session for new data). ``group_near_duplicates`` keeps exact and
        near-duplicate prompts on the same side of the split, so the test set holds no copy of a training
        prompt (the quality gate's ``leakage``).
        """
        with self._step("prepare"):
            template = as_template(template)
            return prepare_step(
                self.context,
                examples_of(records, template),
                template=template,
                n_train=n_train,
                train_fraction=train_fraction,
                seed=seed,
                stratify=stratify,
                group_near_duplicates=group_near_duplicates,
            )

    def use_files(self, train: str | os.PathLike[str], test: str | os.PathLike[str] | None = None) -> None:
        """Use JSONL files of chat examples you built yourself instead of :meth:`prepare`."""
        with self._step("use_files"):
            use_files_step(self.context, Path(train), Path(test) if test is not None else None)

    @property
    def train_examples(self) -> list[ChatExample | PreferenceExample]:
        from finetune_wb.data.jsonl import load_examples

        return load_examples(self.context.require_path("train"))

    @property
    def test_examples(self) -> list[ChatExample | PreferenceExample]:
        from finetune_wb.data.jsonl import load_examples

        return load_examples(self.context.require_path("test"))

    def validate(
        self,
        *,
        model: str | None = None,
        n_epochs: int | None = None,
        max_cost: float | None = None,
        raise_on_error: bool = True,
    ) -> ValidationReport:
        """Validate the training file; raise :class:`DataValidationError` when it has errors.

        ``model`` defaults to the JobSpec's model once one is known, else ``gpt-4o-mini-2024-07-18``.
        """
        with self._step("validate"):
            return validate_step(
                self.context, model=model, n_epochs=n_epochs, max_cost=max_cost, raise_on_error=raise_on_error
            )

    # -- the job --------------------------------------------------------------------------------------------

    def fine_tune(
        self,
        spec: JobSpec | dict[str, Any],
        *,
        quality: Literal["check", "warn", "off"] = "check",
        accept_quality: Iterable[str] = (),
        quality_options: Mapping[str, Any] | None = None,
    ) -> FineTuningJob:
        """Upload the training file (once) and create the job (once); log the dataset run with lineage.

        Calling it again — or after :meth:`resume` — returns the session's existing job instead of creating
        another one. A different spec for a session that already has a job raises :class:`ConfigError`.

        Before the upload the data-quality check runs (see :meth:`check_quality`): an error finding —
        by default test rows leaked into the training set, or secrets in the text — raises
        :class:`DataQualityError` and nothing is uploaded, unless ``accept_quality`` names its code
        (``accept_quality={"leakage"}``) or ``quality="warn"`` (log, never stop); ``quality="off"`` skips
        it. ``quality_options`` are :func:`check_quality`'s options (thresholds, ``allow``, ``severity``).
        """
        with self._step("fine_tune"):
            return fine_tune_step(
                self.context,
                spec,
                quality=quality,
                accept_quality=accept_quality,
                quality_options=quality_options,
            )

    def check_quality(self, **options: Any) -> QualityReport:
        """Run the data-quality checks on the session's train file (and test file, for leakage) now.

        ``options`` are :func:`~finetune_wb.validation.quality.check_quality`'s. Never raises on findings;
        :meth:`fine_tune` applies the same check as a gate before the upload.
        """
        with self._step("check_quality"):
            report = quality_step(self.context, mode="check", options=options, gate=False)
            assert report is not None
            return report

    @property
    def job_id(self) -> str | None:
        return self.state.job_id

    @property
    def fine_tuned_model(self) -> str | None:
        return self.state.fine_tuned_model

    # -- waiting --------------------------------------------------------------------------------------------

    def wait(self, *, timeout: float | None = None) -> FineTuningJob:
        """Wait for the session's job, streaming events and metrics into a W&B ``fine-tune`` run.

        Returns the finished job; raises :class:`JobFailed` / :class:`JobCancelled` (the run records the
        error) or :class:`JobTimeout` (the job keeps running; call ``wait`` again later).
        """
        started = time.monotonic()

        def busy(message: str) -> JobTimeout:
            return JobTimeout(message, job_id=self.state.job_id)

        # wait(timeout=T) waits at most T in all, for another process's step on this file included
        with self._step("wait", lock_timeout=timeout, error=busy):
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            return wait_step(self.context, timeout=left)

    # -- deployment (Azure OpenAI) --------------------------------------------------------------------------

    def deploy(
        self,
        *,
        name: str | None = None,
        sku: str = "developer",
        capacity: int | None = None,
        account: Any = None,
        token: str | None = None,
        credential: Any = None,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> Any:
        """Deploy the fine-tune on Azure OpenAI (Developer tier by default) and wait until it answers.

        ``account``: a :class:`~finetune_wb.jobs.azure_auth.AzureAccount` (default: from
        ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``, ``AZURE_OPENAI_ACCOUNT``, ``AZURE_MANAGEMENT_URL``);
        ``token``/``credential``: the ARM bearer token (default: ``AZURE_MANAGEMENT_TOKEN``, then
        azure-identity). The deployment is recorded in the state before it is asked for, so calling this
        again (or after a crash) re-uses it and never deploys twice; :meth:`evaluate` then asks it by name.
        Returns the :class:`~finetune_wb.jobs.deployments.Deployment`.
        """
        from finetune_wb.session.deploy_step import deploy_step

        with self._step("deploy"):
            return deploy_step(
                self.context,
                account=account,
                name=name,
                sku=sku,
                capacity=capacity,
                token=token,
                credential=credential,
                timeout=timeout,
                poll_interval=poll_interval,
                **kwargs,
            )

    def undeploy(self, *, name: str | None = None, account: Any = None, **kwargs: Any) -> bool:
        """Delete the session's Azure deployment (the fine-tuned model stays); False when it was gone."""
        from finetune_wb.session.deploy_step import undeploy_step

        with self._step("undeploy"):
            return undeploy_step(self.context, account=account, name=name, **kwargs)

    @property
    def deployment(self) -> str | None:
        """The name of the deployment that serves the fine-tune (None until :meth:`deploy` succeeded)."""
        from finetune_wb.session.deploy_step import deployed_name

        return deployed_name(self.context)

    # -- evaluation -----------------------------------------------------------------------------------------

    def evaluate(
        self,
        baselines: Sequence[Any] = (),
        evaluators: Any = None,
        *,
        models: Sequence[Any] | None = None,
        examples: Any = None,
        options: EvalOptions | None = None,
        log_again: bool = False,
        **overrides: Unpack[SessionEvalKwargs],
    ) -> EvalReport:
        """Evaluate the fine-tune against ``baselines`` on the test split, in a W&B ``eval`` run.

        ``baselines``: a model name (or :class:`~finetune_wb.evaluation.ModelTarget`) or a list of them.
        ``models`` replaces the session's fine-tuned model (e.g. an Azure deployment name, or a
        :class:`~finetune_wb.evaluation.ModelTarget` with its own client); the ``baselines`` follow it.
        ``examples`` replaces the test split. ``options`` (an :class:`~finetune_wb.evaluation.EvalOptions`)
        and keyword ``overrides`` over it (``concurrency``, ``rpm``, ``tpm``, ``max_tokens``,
        ``temperature``, ``retry``, ``seed``, ``prices``, ``client``, ``progress``) set how it runs; the
        session's client and progress setting apply where they set none, and the cache, W&B run and lineage
        are always the session's. Answers are cached in the session's SQLite file, so an evaluation that was
        interrupted asks only for what is missing when it runs again. For a label task, a small
        ``max_tokens`` keeps a chatty baseline cheap. Run again with every answer cached, the same
        evaluation is not logged to W&B a second time unless ``log_again``.
        """
        from finetune_wb.evaluation.options import EvalOptions
        from finetune_wb.session.eval_step import evaluate_step

        merged = EvalOptions.merged(options, overrides, caller="FineTuneSession.evaluate")
        with self._step("evaluate"):
            return evaluate_step(
                self.context,
                baselines=baselines,
                evaluators=evaluators,
                models=models,
                examples=examples,
                options=merged,
                log_again=log_again,
            )

    # -- convenience ----------------------------------------------------------------------------------------

    @overload
    def summary(self, *, as_dict: Literal[False] = False) -> SessionSummary: ...

    @overload
    def summary(self, *, as_dict: Literal[True]) -> dict[str, Any]: ...

    def summary(self, *, as_dict: bool = False) -> SessionSummary | dict[str, Any]:
        """A few readable lines: data, validation, job, model, evaluation and W&B, each with what comes next.

        The text is a ``str`` (``print(session.summary())``); a notebook shows it as text, and the session
        itself (``session`` as a cell's last line) as a table. ``as_dict=True`` gives the state as plain JSON
        with ``state_path`` instead, without the validation report texts the artifact metadata repeat.
        """
        from finetune_wb.session.overview import session_summary, state_dict

        if as_dict:
            return state_dict(self.state, self.state_path)
        return session_summary(self.state, self.state_path)

    def _repr_html_(self) -> str:
        """The summary as a small HTML table (what a notebook shows for ``session``)."""
        from finetune_wb.session.overview import session_html

        return session_html(self.state, self.state_path)

    def __repr__(self) -> str:
        st = self.state
        model = f", fine_tuned_model={st.fine_tuned_model!r}" if st.fine_tuned_model else ""
        return (
            f"FineTuneSession(project={st.project!r}, session_id={st.session_id!r}, job_id={st.job_id!r}, "
            f"status={st.job_status!r}{model}, state_path='{self.state_path}')"
        )


__all__ = ["FineTuneSession", "SessionState"]
