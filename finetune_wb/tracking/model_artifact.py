"""The model artifact a fine-tune run produces, and the hook eval runs use to consume it.

``log_model`` writes a JSON model card (fine-tuned model, base model, job id, method, hyperparameters,
trained tokens, final metrics, checkpoint names) as a ``model`` artifact; ``model_ref`` finds it again in
the local record by job id or model name; ``start_eval_run`` starts an ``eval`` run whose inputs are that
model artifact and the test dataset artifact.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune_wb._secrets import scrub
from finetune_wb.errors import TrackingError
from finetune_wb.tracking.artifacts import ArtifactRef, recorded_artifacts, remember
from finetune_wb.tracking.lineage import add_lineage, link_input
from finetune_wb.tracking.mode import is_offline, start_run
from finetune_wb.tracking.records import safe_name
from finetune_wb.tracking.results import dump_job, hyperparameters_of


def log_model(
    run: Any,
    job: Any,
    *,
    final_metrics: Mapping[str, float] | None = None,
    checkpoints: list[dict[str, Any]] | None = None,
) -> ArtifactRef:
    """Log the fine-tuned model as a ``model`` artifact (a JSON model card) produced by ``run``."""
    import wandb

    job_json = job if isinstance(job, dict) else dump_job(job)
    card = scrub(
        {
            "fine_tuned_model": job_json.get("fine_tuned_model"),
            "base_model": job_json.get("model"),
            "job_id": job_json.get("id"),
            "method": (job_json.get("method") or {}).get("type") or "supervised",
            "hyperparameters": hyperparameters_of(job_json),
            "trained_tokens": job_json.get("trained_tokens"),
            "training_file": job_json.get("training_file"),
            "validation_file": job_json.get("validation_file"),
            "final_metrics": dict(final_metrics or {}),
            "checkpoints": [c["checkpoint"] for c in checkpoints or []],
        }
    )
    body = json.dumps(card, indent=2, sort_keys=True).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    name = safe_name(f"model-{job_json.get('id')}", fallback="model")
    artifact = wandb.Artifact(
        name, type="model", metadata=card, description=f"fine-tuned model {card['fine_tuned_model']}"
    )
    with tempfile.TemporaryDirectory(prefix="finetune_wb-") as tmp:
        path = Path(tmp) / "model.json"
        path.write_bytes(body)
        artifact.add_file(str(path), name="model.json")
        try:
            run.log_artifact(artifact, aliases=["latest", digest])
        except Exception as exc:
            raise TrackingError(
                f"W&B could not log the model artifact of job {job_json.get('id')}: {exc}"
            ) from exc
    online = not is_offline(run)
    ref = ArtifactRef(
        name=name,
        type="model",
        digest=digest,
        wandb_digest=artifact.digest,
        run_id=getattr(run, "id", None),
        # online, where it lives: an eval run in another project must still find it by name
        entity=(getattr(run, "entity", None) or None) if online else None,
        project=(getattr(run, "project", None) or None) if online else None,
        metadata=card,
    )
    add_lineage(run, "outputs", ref.lineage_entry())
    return remember(ref)


# ---------------------------------------------------------------------------------------------------------
# The hook for evaluation runs.


def model_ref(*, job_id: str | None = None, fine_tuned_model: str | None = None) -> ArtifactRef | None:
    """The model artifact recorded locally for a job id or fine-tuned model name (None if never logged)."""
    for ref in reversed(recorded_artifacts("model")):
        meta = ref.metadata
        if (job_id and meta.get("job_id") == job_id) or (
            fine_tuned_model and meta.get("fine_tuned_model") == fine_tuned_model
        ):
            return ref
    return None


def eval_run_name(data: Path) -> str:
    """The name of the CLI's eval run on ``data``: ``eval-<file stem>-<first 8 hex of its SHA-256>`` (no
    model id: the models are in the run's config), so re-evaluations of one file are named alike."""
    try:
        digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()[:8]
    except OSError:
        digest = "unread"
    return f"eval-{safe_name(Path(data).stem, fallback='data')}-{digest}"


def start_eval_run(
    *,
    project: str,
    entity: str | None = None,
    model: ArtifactRef | str | None = None,
    test_data: ArtifactRef | None = None,
    baseline: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: list[str] | None = None,
) -> Any:
    """Start an ``eval`` run that uses the model artifact and the test dataset artifact as inputs.

    ``model`` is an ArtifactRef, or a job id / fine-tuned model name looked up in the local record.
    Offline, the inputs are recorded in ``config["lineage"]``. The caller finishes the returned run.
    """
    ref = model
    if isinstance(model, str):
        ref = model_ref(job_id=model) or model_ref(fine_tuned_model=model)
    run_config: dict[str, Any] = dict(config or {})
    if isinstance(ref, ArtifactRef):
        run_config.setdefault("fine_tuned_model", ref.metadata.get("fine_tuned_model"))
        run_config.setdefault("job_id", ref.metadata.get("job_id"))
    elif isinstance(model, str):
        run_config.setdefault("fine_tuned_model", model)
    if baseline:
        run_config.setdefault("baseline_model", baseline)
    run = start_run(
        project=project,
        entity=entity,
        name=name,
        job_type="eval",
        config=run_config,
        tags=tags,
        what=f"an eval run in project {project!r}",
    )
    for item in (ref, test_data):
        if isinstance(item, ArtifactRef):
            link_input(run, item)
    return run
