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
``progress=True``), keeps no global state, and guards its own state with a lock. Use one session per thread
(or per job); sessions in different threads do not share anything but the disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb._paths import sha256_file
from finetune_wb.errors import ConfigError, DataError
from finetune_wb.session.runs import start_session_run, tracking_enabled
from finetune_wb.session.state import DEFAULT_MODEL, SessionState, WandbMode, dump_obj, load_state, save_state

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb.data.template import Template
    from finetune_wb.evaluation import EvalReport
    from finetune_wb.schema import ChatExample, JobSpec, PreferenceExample
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
        progress: show progress bars (uploads, the job, the evaluation). Off by default: services log.
        poll_interval: first interval between job polls, in seconds.
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
        progress: bool = False,
        poll_interval: float = 1.0,
    ) -> None:
        if wandb_mode not in (None, "online", "offline", "disabled"):
            raise ConfigError(
                f"wandb_mode must be 'online', 'offline', 'disabled' or None, got {wandb_mode!r}"
            )
        self._client = client
        self.wandb_mode = wandb_mode
        self.wandb_dir = str(wandb_dir) if wandb_dir is not None else None
        self.progress = progress
        self.poll_interval = poll_interval
        self._lock = threading.RLock()
        self._report: ValidationReport | None = None
        self._last_eval: EvalReport | None = None
        if state_path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            from finetune_wb._paths import state_dir

            state_path = (
                state_dir() / "sessions" / f"{_file_safe(project)}-{stamp}-{uuid.uuid4().hex[:6]}.json"
            )
        self.state_path = Path(state_path).expanduser().resolve()
        if self.state_path.exists():
            self.state = self._load(self.state_path)
            if self.state.project != project and project != "finetune-wb":
                raise ConfigError(
                    f"{self.state_path} belongs to project {self.state.project!r}, not {project!r}; "
                    "pass another state_path for a new session"
                )
            if entity is not None:
                self.state.entity = entity
            logger.info("session %s continues from %s", self.state.session_id, self.state_path)
        else:
            self.state = SessionState(project=project, entity=entity)
            try:
                self._save()
            except OSError as exc:
                raise ConfigError(
                    f"cannot write the session state file {self.state_path}: {exc.strerror or exc}; "
                    "pass a state_path in a writable directory"
                ) from exc
            logger.info("session %s: new state file %s", self.state.session_id, self.state_path)

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        client: openai.OpenAI | None = None,
        wandb_mode: WandbMode | None = None,
        wandb_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
        poll_interval: float = 1.0,
    ) -> FineTuneSession:
        """Continue the session saved at ``path``: no second upload, no second job, cached eval answers."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"cannot resume: no session state file at {path}")
        state = cls._load(path)
        return cls(
            state.project,
            client=client,
            state_path=path,
            wandb_mode=wandb_mode,
            entity=state.entity,
            wandb_dir=wandb_dir,
            progress=progress,
            poll_interval=poll_interval,
        )

    @staticmethod
    def _load(path: Path) -> SessionState:
        return load_state(path)

    def _save(self) -> None:
        save_state(self.state, self.state_path)

    @property
    def project(self) -> str:
        return self.state.project

    @property
    def data_dir(self) -> Path:
        """Directory beside the state file that holds the train/test JSONL and the evaluation cache."""
        return self.state_path.with_name(f"{self.state_path.stem}-data")

    @property
    def client(self) -> openai.OpenAI:
        """The OpenAI client (built from the environment on first use when none was given)."""
        if self._client is None:
            from finetune_wb._client import get_client

            self._client = get_client(None)
        return self._client

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        from finetune_wb.tracking.mode import hint_to_logger_only

        with self._lock:
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
    ) -> tuple[list[ChatExample], list[ChatExample]]:
        """Build chat examples from ``records`` with ``template``, split them, and write both splits.

        ``records``: a list of dicts, a pandas DataFrame, a Hugging Face Dataset / DatasetDict or a path.
        With neither ``n_train`` nor ``train_fraction``, 80 % go to training. Calling ``prepare`` again with
        the same data changes nothing; with different data after a job exists it raises
        :class:`ConfigError` (start a new session for new data).
        """
        from finetune_wb.data.build import build_examples, split_examples
        from finetune_wb.data.jsonl import write_jsonl
        from finetune_wb.data.template import Template

        with self._step("prepare"):
            if isinstance(template, dict):
                unknown = sorted(set(template) - set(Template.model_fields))
                if unknown:
                    raise ConfigError(
                        f"template has unknown key(s) {unknown}; a template takes {sorted(Template.model_fields)}"
                    )
                template = Template(**template)
            examples = build_examples(records, template=template)
            if not examples:
                raise DataError("prepare got no records: pass a non-empty list, DataFrame, Dataset or file")
            if n_train is None and train_fraction is None:
                train_fraction = 0.8
            train, test = split_examples(
                examples, n_train=n_train, train_fraction=train_fraction, seed=seed, stratify=stratify
            )
            self.data_dir.mkdir(parents=True, exist_ok=True)
            train_path = self.data_dir / "train.jsonl"
            test_path = self.data_dir / "test.jsonl"
            staged_train = write_jsonl(train, self.data_dir / ".train.jsonl.new")
            staged_test = write_jsonl(test, self.data_dir / ".test.jsonl.new")
            train_digest, test_digest = sha256_file(Path(staged_train)), sha256_file(Path(staged_test))
            st = self.state
            if st.train_digest is not None and (st.train_digest, st.test_digest) != (
                train_digest,
                test_digest,
            ):
                if st.training_file_id or st.job_id:
                    Path(staged_train).unlink(missing_ok=True)
                    Path(staged_test).unlink(missing_ok=True)
                    raise ConfigError(
                        f"session {st.session_id} ({self.state_path}) already uploaded other training data "
                        f"(sha256 {st.train_digest[:12]}); start a new session (another state_path) for new data"
                    )
                st.validation = None
                self._report = None
            os.replace(staged_train, train_path)
            os.replace(staged_test, test_path)
            st.template = dump_obj(template)
            st.split = {
                "n_train": n_train,
                "train_fraction": train_fraction,
                "seed": seed,
                "stratify": stratify,
            }
            st.train_path, st.test_path = str(train_path), str(test_path)
            st.train_digest, st.test_digest = train_digest, test_digest
            st.n_train, st.n_test = len(train), len(test)
            self._save()
            logger.info(
                "prepared %d train / %d test examples (train sha256 %s)",
                len(train),
                len(test),
                train_digest[:12],
            )
            return list(train), list(test)

    def use_files(self, train: str | os.PathLike[str], test: str | os.PathLike[str] | None = None) -> None:
        """Use JSONL files of chat examples you built yourself instead of :meth:`prepare`."""
        import shutil

        with self._step("use_files"):
            self.data_dir.mkdir(parents=True, exist_ok=True)
            targets = {"train": Path(train), **({"test": Path(test)} if test is not None else {})}
            for split, src in targets.items():
                if not src.is_file():
                    raise ConfigError(f"{src}: no such {split} file")
                digest = sha256_file(src)
                old = getattr(self.state, f"{split}_digest")
                if (
                    split == "train"
                    and old not in (None, digest)
                    and (self.state.training_file_id or self.state.job_id)
                ):
                    raise ConfigError(
                        f"session {self.state.session_id} ({self.state_path}) already uploaded other training "
                        f"data than {src}; start a new session (another state_path) for new data"
                    )
                dest = self.data_dir / f"{split}.jsonl"
                if src.resolve() != dest.resolve():
                    shutil.copyfile(src, dest)
                setattr(self.state, f"{split}_path", str(dest))
                setattr(self.state, f"{split}_digest", digest)
                with dest.open("rb") as fh:
                    setattr(self.state, f"n_{split}", sum(1 for line in fh if line.strip()))
            self._save()

    @property
    def train_examples(self) -> list[ChatExample | PreferenceExample]:
        from finetune_wb.data.jsonl import load_examples

        return load_examples(self._require_path("train"))

    @property
    def test_examples(self) -> list[ChatExample | PreferenceExample]:
        from finetune_wb.data.jsonl import load_examples

        return load_examples(self._require_path("test"))

    def _require_path(self, split: str) -> Path:
        value = getattr(self.state, f"{split}_path")
        if not value:
            raise ConfigError(f"no {split} data yet: call session.prepare(records, template=...) first")
        path = Path(value)
        if not path.is_file():
            raise ConfigError(f"the session's {split} file {path} is missing (state file {self.state_path})")
        return path

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
        from finetune_wb.validation.validate import validate_file

        with self._step("validate"):
            path = self._require_path("train")
            model = model or (self.state.spec or {}).get("model") or DEFAULT_MODEL
            report = validate_file(path, model=model, n_epochs=n_epochs, max_cost=max_cost)
            self._report = report
            tokens = getattr(report, "tokens", None)
            self.state.validation = {
                "ok": bool(report.ok),
                "model": model,
                "digest": self.state.train_digest,
                "n_examples": report.n_examples,
                "n_errors": len(report.errors),
                "n_warnings": len(report.issues) - len(report.errors),
                "n_epochs": getattr(report, "n_epochs", None),
                "billed_tokens": getattr(tokens, "billed", None),
                "total_tokens": getattr(tokens, "total", None),
                "estimated_cost_usd": getattr(report, "estimated_cost_usd", None),
            }
            self._save()
            logger.info("validation: %s", report.summary().splitlines()[0] if report.summary() else report.ok)
            if raise_on_error:
                report.raise_for_errors()
            return report

    # -- the job --------------------------------------------------------------------------------------------

    def fine_tune(self, spec: JobSpec | dict[str, Any]) -> FineTuningJob:
        """Upload the training file (once) and create the job (once); log the dataset run with lineage.

        Calling it again — or after :meth:`resume` — returns the session's existing job instead of creating
        another one. A different spec for a session that already has a job raises :class:`ConfigError`.
        """
        from finetune_wb.session.job_step import fine_tune_step

        with self._step("fine_tune"):
            return fine_tune_step(self, spec)

    def _retrieve_job(self) -> FineTuningJob:
        if not self.state.job_id:
            raise ConfigError("no job yet: call session.fine_tune(JobSpec(...)) first")
        return self.client.fine_tuning.jobs.retrieve(self.state.job_id)

    @property
    def job_id(self) -> str | None:
        return self.state.job_id

    @property
    def fine_tuned_model(self) -> str | None:
        return self.state.fine_tuned_model

    # -- W&B ------------------------------------------------------------------------------------------------

    @property
    def _tracking(self) -> bool:
        return tracking_enabled(self.wandb_mode)

    def _init_run(self, job_type: str, *, name: str, config: dict[str, Any] | None = None) -> Any:
        return start_session_run(
            self.state,
            self.state_path,
            job_type=job_type,
            name=name,
            config=config,
            mode=self.wandb_mode,
            wandb_dir=self.wandb_dir,
        )

    # -- waiting --------------------------------------------------------------------------------------------

    def wait(self, *, timeout: float | None = None) -> FineTuningJob:
        """Wait for the session's job, streaming events and metrics into a W&B ``fine-tune`` run.

        Returns the finished job; raises :class:`JobFailed` / :class:`JobCancelled` (the run records the
        error) or :class:`JobTimeout` (the job keeps running; call ``wait`` again later).
        """
        from finetune_wb.session.job_step import wait_step

        with self._step("wait"):
            return wait_step(self, timeout=timeout)

    def _spec(self) -> JobSpec | None:
        if not self.state.spec:
            return None
        from finetune_wb.schema import JobSpec

        return JobSpec.model_validate(self.state.spec)

    # -- evaluation -----------------------------------------------------------------------------------------

    def evaluate(
        self,
        baselines: Sequence[Any] = (),
        evaluators: Any = None,
        *,
        models: Sequence[Any] | None = None,
        examples: Any = None,
        concurrency: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        max_tokens: int = 256,
        temperature: float = 0,
    ) -> EvalReport:
        """Evaluate the fine-tune against ``baselines`` on the test split, in a W&B ``eval`` run.

        ``baselines``: a model name (or :class:`~finetune_wb.evaluation.ModelTarget`) or a list of them.
        ``models`` replaces the session's fine-tuned model (e.g. an Azure deployment name, or a
        :class:`~finetune_wb.evaluation.ModelTarget` with its own client); the ``baselines`` follow it.
        ``examples`` replaces the test split. Answers are cached in the session's SQLite file, so an
        evaluation that was interrupted asks only for what is missing when it runs again. For a label task,
        a small ``max_tokens`` keeps a chatty baseline cheap.
        """
        from finetune_wb.session.eval_step import evaluate_step

        with self._step("evaluate"):
            return evaluate_step(
                self,
                baselines=baselines,
                evaluators=evaluators,
                models=models,
                examples=examples,
                concurrency=concurrency,
                rpm=rpm,
                tpm=tpm,
                max_tokens=max_tokens,
                temperature=temperature,
            )

    # -- convenience ----------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The state as plain JSON (what ``finetune-wb run --json`` prints)."""
        return {"state_path": str(self.state_path), **self.state.model_dump(mode="json")}

    def __repr__(self) -> str:
        st = self.state
        return (
            f"FineTuneSession(project={st.project!r}, session_id={st.session_id!r}, job_id={st.job_id!r}, "
            f"status={st.job_status!r}, state_path='{self.state_path}')"
        )


__all__ = ["FineTuneSession", "SessionState"]
