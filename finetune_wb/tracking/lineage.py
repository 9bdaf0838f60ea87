"""Lineage between runs: an artifact as an input of a run, online through W&B, offline in the run's config.

Online, ``run.use_artifact`` draws the edge in W&B. In both modes the run's ``config["lineage"]`` lists its
``inputs`` and ``outputs`` (name, SHA-256, W&B digest, OpenAI file id), so a run logged offline and synced
later still says which data and model it used; offline no call to ``use_artifact``, ``wandb.Api()`` or
``wandb.login()`` is made.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from finetune_wb._secrets import scrub
from finetune_wb.errors import TrackingError
from finetune_wb.tracking.artifacts import ArtifactRef, refreshed
from finetune_wb.tracking.mode import is_offline, offline_hint

logger = logging.getLogger("finetune_wb.tracking")


def ref_from_artifact(artifact: Any) -> ArtifactRef:
    """An ArtifactRef for a ``wandb.Artifact`` (logged or used); sha256 from metadata when we logged it."""
    metadata = dict(getattr(artifact, "metadata", None) or {})
    name = str(getattr(artifact, "name", "artifact")).split(":")[0]
    version = None
    entity = project = None
    try:
        version = artifact.version
        entity, project = artifact.entity, artifact.project
    except Exception:  # offline or not logged yet: W&B refuses to say
        pass
    return ArtifactRef(
        name=name,
        type=str(getattr(artifact, "type", "dataset")),
        digest=str(metadata.get("sha256") or getattr(artifact, "digest", "")),
        version=version,
        entity=entity,
        project=project,
        file_id=metadata.get("openai_file_id"),
        wandb_digest=getattr(artifact, "digest", None),
        metadata=scrub(metadata),
    )


def link_input(run: Any, ref: ArtifactRef | Any) -> ArtifactRef:
    """Record ``ref`` as an input of ``run``.

    Online: ``run.use_artifact`` draws the lineage edge in W&B. Both modes keep the name, SHA-256, W&B
    digest and OpenAI file id under ``config["lineage"]["inputs"]``; offline that is the only record, and
    no call to ``use_artifact``, ``wandb.Api()`` or ``wandb.login()`` is made.
    """
    if run is None:
        raise TrackingError("link_input needs a W&B run")
    if not isinstance(ref, ArtifactRef):
        artifact = ref
        ref = ref_from_artifact(artifact)
    else:
        artifact = None
        ref = refreshed(ref)
    if not is_offline(run):
        target = artifact if artifact is not None else _online_name(run, ref)
        try:
            run.use_artifact(target, type=ref.type) if isinstance(target, str) else run.use_artifact(target)
        except Exception as exc:
            logger.warning(
                "W&B could not use artifact %s as an input of run %s (%s); it is recorded in the run config",
                ref.qualified_name,
                getattr(run, "id", "?"),
                exc,
            )
    else:
        offline_hint(run)
    add_lineage(run, "inputs", ref.lineage_entry())
    return ref


def _online_name(run: Any, ref: ArtifactRef) -> str:
    if ref.version and ref.entity and ref.project:
        return ref.qualified_name
    entity = ref.entity or getattr(run, "entity", None)
    project = ref.project or getattr(run, "project", None)
    prefix = f"{entity}/{project}/" if entity and project else ""
    return f"{prefix}{ref.name}:{ref.version or ref.digest}"


def add_lineage(run: Any, kind: str, entry: dict[str, Any]) -> None:
    """Append ``entry`` to ``config.lineage[kind]`` (once per qualified name)."""
    try:
        current = run.config.get("lineage") or {}
    except Exception:
        current = {}
    lineage = json.loads(json.dumps(dict(current), default=str)) if current else {}
    items = [e for e in lineage.get(kind, []) if e.get("qualified_name") != entry.get("qualified_name")]
    items.append(entry)
    lineage[kind] = items
    run.config.update({"lineage": scrub(lineage)}, allow_val_change=True)
