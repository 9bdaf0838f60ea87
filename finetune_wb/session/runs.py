"""The W&B runs of a :class:`~finetune_wb.session.facade.FineTuneSession`: one run per step, linked by artifacts.

``dataset`` (train and test artifacts, logged after the upload so the OpenAI file id is in their metadata),
``fine-tune`` (named after the job id; :class:`~finetune_wb.tracking.FineTuneTracker` streams the job's
metrics into it and logs the model artifact) and ``eval``. Each run records where it was written in the
session's state (``wandb_runs``), and the artifact references it produced, so the later runs of the session
— in this process or after a resume — can name them as inputs.

One W&B run per step, across crashes: a step's run id is saved in the state (``wandb_open_runs``) *before*
the run starts and dropped once the step has finished its work. A step started again after a kill (or an
interrupted ``wait``) continues that same run (``wandb.init(id=..., resume="allow")``), so ``wandb sync``
uploads one run per step instead of a crashed one beside a new one. Offline, the killed attempt's run
directory is moved out of ``wandb/`` into ``wandb-superseded/`` beside it (the resumed run logs everything
again: every event of the job, the whole evaluation), so that syncing ``wandb/`` uploads the run once.

Every run of a session is in the W&B ``group`` named by its session id, and its config explains it
(:meth:`SessionRuns.explain`): the template (system prompt included), the split settings (``n_train``,
``train_fraction``, ``seed``, ``stratify``) and the validation summary, as far as the session has them.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import TrackingError

logger = logging.getLogger("finetune_wb.session")

SUPERSEDED_DIR = "wandb-superseded"
"""Where an offline run directory left by a killed step goes when the step's run is resumed."""

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb.session.state import SessionState, WandbMode
    from finetune_wb.tracking.artifacts import ArtifactRef


def tracking_enabled(mode: str | None) -> bool:
    """False when W&B is disabled for this session (its own ``wandb_mode`` first, else ``WANDB_MODE``)."""
    return (mode or os.environ.get("WANDB_MODE")) != "disabled"


@dataclass(eq=False)
class SessionRuns:
    """Starts the W&B runs of one session and records each in its state's ``wandb_runs``."""

    state: SessionState
    state_path: Path
    mode: WandbMode | None = None
    """"online", "offline" or "disabled"; None follows ``WANDB_MODE`` (offline without credentials)."""
    wandb_dir: str | None = None

    @property
    def enabled(self) -> bool:
        """False when W&B is disabled for this session: the steps then start no run at all."""
        return tracking_enabled(self.mode)

    def start(self, job_type: str, *, name: str, config: dict[str, Any] | None = None) -> Any:
        """Start (or, after a crash, continue) the run of step ``job_type``; never touches a run the caller
        has open (``reinit="create_new"``). The run id is in the state file before the run exists."""
        import wandb

        from finetune_wb._secrets import scrub
        from finetune_wb.session.state import save_state
        from finetune_wb.tracking.mode import init_mode, run_settings

        state = self.state
        run_id = state.wandb_open_runs.get(job_type)
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            state.wandb_open_runs[job_type] = run_id
        else:
            logger.info("continuing the W&B %s run %s of session %s", job_type, run_id, state.session_id)
            self._set_aside(job_type, run_id)
        save_state(state, self.state_path)
        cfg = {
            "session_id": state.session_id,
            "state_file": str(self.state_path),
            **self.explain(),
            **(config or {}),
        }
        try:
            run = wandb.init(
                project=state.project,
                entity=state.entity,
                job_type=job_type,
                group=state.session_id,
                name=name,
                id=run_id,
                resume="allow",
                config=scrub(cfg),
                # None would let wandb prompt for a login; without credentials the run is written offline
                mode=self.mode or init_mode(),  # type: ignore[arg-type]
                dir=self.wandb_dir,
                reinit="create_new",
                settings=run_settings(),
            )
        except Exception as exc:
            raise TrackingError(
                f"could not start a W&B {job_type} run in project {state.project!r}: {exc}; log in with "
                "`wandb login`, or pass wandb_mode='offline' (upload later with `wandb sync`) or 'disabled'"
            ) from exc
        run_dir = getattr(run, "dir", None)
        state.wandb_runs[job_type] = str(Path(run_dir).parent) if run_dir else str(getattr(run, "id", ""))
        save_state(state, self.state_path)
        return run

    def explain(self) -> dict[str, Any]:
        """What made this session's data: ``template``, ``system_prompt``, ``split``, ``validation``."""
        state = self.state
        out: dict[str, Any] = {}
        if state.template is not None:
            out["template"] = state.template
            out["system_prompt"] = state.template.get("system")
        if state.split is not None:
            out["split"] = {**state.split, "n_train_examples": state.n_train, "n_test_examples": state.n_test}
        if state.validation is not None:
            out["validation"] = state.validation
        return out

    def finished(self, job_type: str) -> None:
        """Step ``job_type`` has done its work: its next start (a second evaluation, say) is a new run."""
        self.state.wandb_open_runs.pop(job_type, None)

    def _set_aside(self, job_type: str, run_id: str) -> None:
        """Move the offline run directories of ``run_id`` a killed attempt left out of ``wandb/``."""
        roots = {Path(self.wandb_dir or os.environ.get("WANDB_DIR") or ".") / "wandb"}
        recorded = self.state.wandb_runs.get(job_type)
        if recorded:
            roots.add(Path(recorded).parent)
        for root in roots:
            for old in sorted(root.glob(f"offline-run-*-{run_id}")):
                target = root.parent / SUPERSEDED_DIR / old.name
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    old.rename(target)
                except OSError as exc:
                    logger.warning("could not move the superseded W&B run %s aside: %s", old, exc)
                else:
                    logger.info("moved %s (superseded by its resumed run) to %s", old, target)

    def log_datasets(
        self, *, train_path: Path, test_path: Path | None, report: Any = None, quality: Any = None
    ) -> None:
        """The ``dataset`` run: train (with its validation report and OpenAI file id) and test artifacts."""
        from finetune_wb.tracking.datasets import log_dataset

        state = self.state
        run = self.start(
            "dataset", name=f"data-{(state.train_digest or '')[:8]}", config={"spec": state.spec}
        )
        try:
            train_ref = log_dataset(
                train_path,
                run=run,
                split="train",
                name=f"{state.project}-train",
                report=report,
                file_id=state.training_file_id,
                model=(state.spec or {}).get("model"),
                quality=quality,
            )
            state.train_artifact = train_ref.model_dump(mode="json")
            if test_path is not None:
                test_ref = log_dataset(test_path, run=run, split="test", name=f"{state.project}-test")
                state.test_artifact = test_ref.model_dump(mode="json")
        except BaseException:
            run.finish(exit_code=1)
            raise
        run.finish()
        self.finished("dataset")


def artifact_ref(data: dict[str, Any] | None) -> ArtifactRef | None:
    """An :class:`~finetune_wb.tracking.ArtifactRef` back from its JSON form in the state file."""
    if not data:
        return None
    from finetune_wb.tracking.artifacts import ArtifactRef

    return ArtifactRef.model_validate(data)
