"""The state file of a :class:`~finetune_wb.session.facade.FineTuneSession`: its model and how it is written.

The file is small JSON, rewritten after every step through a temporary file and ``os.replace`` so that a crash
leaves the previous version or the new one, never half of either. Processes that share one state file take
its lock (:func:`state_lock`) around every step and re-read the file under it. It never holds credentials:
only ids, digests, paths, the base URL of the server (without user-info) and the evaluation's numbers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from finetune_wb._jsonable import to_jsonable
from finetune_wb._paths import atomic_write_text, lock_path_for, process_lock
from finetune_wb.errors import ConfigError, FineTuneError

STATE_VERSION = 1
WandbMode = Literal["online", "offline", "disabled"]


class SessionState(BaseModel):
    """Everything a session needs to continue after a crash. Written as JSON, never holds credentials."""

    version: int = STATE_VERSION
    session_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    project: str
    entity: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    base_url: str | None = Field(None, description="the server the job lives on (no credentials)")

    # prepare()
    template: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    train_path: str | None = None
    test_path: str | None = None
    train_digest: str | None = Field(None, description="SHA-256 of the training JSONL")
    test_digest: str | None = Field(None, description="SHA-256 of the test JSONL")
    n_train: int | None = None
    n_test: int | None = None

    # validate()
    validation: dict[str, Any] | None = None
    quality: dict[str, Any] | None = Field(
        None, description="the data-quality check before the upload: counts, what was accepted, what blocked"
    )

    # fine_tune()
    spec: dict[str, Any] | None = None
    training_file_id: str | None = None
    train_artifact: dict[str, Any] | None = None
    test_artifact: dict[str, Any] | None = None
    job_request_id: str | None = Field(None, description="saved before create_job, so a retry adopts the job")
    job_id: str | None = None

    # wait()
    job_status: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    model_artifact: dict[str, Any] | None = None
    tracked: bool = Field(False, description="the fine-tune W&B run was finalized")

    # deploy() (Azure OpenAI)
    deployment: dict[str, Any] | None = Field(
        None,
        description="the Azure deployment of the fine-tune: name, model, sku, account, state (recorded "
        "before the deployment is asked for, so a resume re-uses it and never deploys twice)",
    )

    # evaluate()
    eval_cache_path: str | None = None
    eval_models: list[str] = Field(default_factory=list)
    eval_summary: dict[str, Any] | None = None
    eval_fingerprint: str | None = Field(
        default=None,
        description="what the last evaluation logged to W&B asked (models, servers, evaluators, settings, "
        "examples); a fully cached re-run of the same evaluation is not logged again",
    )

    wandb_runs: dict[str, str] = Field(default_factory=dict, description="step -> W&B run directory or id")
    wandb_open_runs: dict[str, str] = Field(
        default_factory=dict,
        description="step -> id of its W&B run while the step is unfinished (a resume continues that run)",
    )


def dump_obj(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return dict(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return dict(obj)
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {"value": repr(obj)}


def load_state(path: Path) -> SessionState:
    """Read a state file; a missing or corrupt one is a :class:`ConfigError` naming the file."""
    from pydantic import ValidationError

    what_to_do = "pass another state_path, or move this file away to start a new session"
    try:
        return SessionState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = f"{where}: {first['msg']}" if where else first["msg"]
        raise ConfigError(f"{path}: not a finetune_wb session state file ({reason}); {what_to_do}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a finetune_wb session state file (not UTF-8 text: byte 0x{exc.object[exc.start]:02x} "
            f"at offset {exc.start}); {what_to_do}"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the session state file ({exc.strerror or exc}); check that it is a readable "
            f"file, or {what_to_do}"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: cannot read the session state file ({exc}); {what_to_do}") from exc


def state_lock(
    path: Path, *, step: str, timeout: float | None, error: Callable[[str], BaseException] = FineTuneError
) -> AbstractContextManager[None]:
    """The cross-process lock of the state file ``path`` (``<path>.lock``), held while ``step`` runs."""
    return process_lock(
        lock_path_for(path),
        timeout=timeout,
        what=f"session state file {path} ({step})",
        error=error,
    )


def save_state(state: SessionState, path: Path) -> None:
    state.updated_at = time.time()
    atomic_write_text(path, state.model_dump_json(indent=2) + "\n")


def eval_summary(report: Any) -> dict[str, Any]:
    """The small part of an EvalReport worth keeping in the state file: metrics and comparisons."""
    out: dict[str, Any] = {}
    for key in ("metrics", "comparisons", "n_examples", "models", "unanswered", "warnings"):
        value = getattr(report, key, None)
        if value is None:
            continue
        try:
            out[key] = json.loads(json.dumps(to_jsonable(value), default=str))
        except (TypeError, ValueError):  # pragma: no cover - defensive
            continue
    return out
