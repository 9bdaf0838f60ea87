"""The LoRA adapter a local TRL job trained, logged as a W&B artifact of type ``lora`` (a full fine-tune's
weights: type ``model-weights``).

A job trained by ``finetune-wb serve --trainer trl`` carries a ``local_adapter`` field in its job object
(``{"path", "base_model", "kind"}``; OpenAI's jobs have none). When the directory is readable from here
(the server runs on this machine or shares its disk), its files go into the artifact; otherwise the
artifact holds only the metadata, with the path on the server. Either way the metadata names the base
model, so the adapter can be applied to the right weights later.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from finetune_wb.errors import TrackingError
from finetune_wb.tracking.artifacts import ArtifactRef, remember
from finetune_wb.tracking.lineage import add_lineage
from finetune_wb.tracking.records import safe_name

ADAPTER_ARTIFACT_TYPE = "lora"
FULL_WEIGHTS_ARTIFACT_TYPE = (
    "model-weights"  # a full fine-tune (serve --full): the whole model, not an adapter
)


def local_adapter_of(job_json: dict[str, Any]) -> dict[str, Any] | None:
    """The ``local_adapter`` field of a job object, when its server set one."""
    value = job_json.get("local_adapter")
    if isinstance(value, dict) and isinstance(value.get("path"), str) and value.get("base_model"):
        return value
    return None


def log_adapter(run: Any, job_json: dict[str, Any]) -> ArtifactRef | None:
    """Log the job's adapter as a ``lora`` artifact produced by ``run``; None when the job has none."""
    import wandb

    adapter = local_adapter_of(job_json)
    if adapter is None:
        return None
    folder = Path(adapter["path"])
    files = folder.is_dir()
    metadata = {
        "base_model": adapter["base_model"],
        "served_base_model": job_json.get("model"),
        "fine_tuned_model": job_json.get("fine_tuned_model"),
        "job_id": job_json.get("id"),
        "kind": adapter.get("kind", "lora"),
        "path": str(folder),
        "files_included": files,
    }
    kind = ADAPTER_ARTIFACT_TYPE if metadata["kind"] == "lora" else FULL_WEIGHTS_ARTIFACT_TYPE
    name = safe_name(f"{kind}-{job_json.get('id')}", fallback=kind)
    artifact = wandb.Artifact(
        name,
        type=kind,
        metadata=metadata,
        description=f"{metadata['kind']} weights of {metadata['fine_tuned_model']} over {adapter['base_model']}",
    )
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode())
    if files:
        artifact.add_dir(str(folder))
        for item in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(item.relative_to(folder).as_posix().encode() + b"\0" + item.read_bytes())
    try:
        run.log_artifact(artifact, aliases=["latest", digest.hexdigest()])
    except Exception as exc:
        raise TrackingError(
            f"W&B could not log the adapter of job {job_json.get('id')} ({folder}): {exc}"
        ) from exc
    ref = ArtifactRef(
        name=name,
        type=kind,
        digest=digest.hexdigest(),
        wandb_digest=artifact.digest,
        run_id=getattr(run, "id", None),
        metadata=metadata,
    )
    add_lineage(run, "outputs", ref.lineage_entry())
    return remember(ref)
