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


def _base_name(name: str) -> str:
    """``entity/project/name:v3`` or ``name:v3`` -> ``name``."""
    return name.split("/")[-1].split(":")[0]


def _already_used(used: list[Any], entry: dict[str, Any]) -> bool:
    """Whether one of the run's input artifacts is ``entry`` (same name and the same content)."""
    for art in used:
        if _base_name(str(getattr(art, "name", ""))) != entry.get("name"):
            continue
        meta = dict(getattr(art, "metadata", None) or {})
        aliases = [str(a) for a in (getattr(art, "aliases", None) or [])]
        if entry.get("sha256") in (meta.get("sha256"), *aliases) or (
            entry.get("wandb_digest") and entry.get("wandb_digest") == getattr(art, "digest", None)
        ):
            return True
    return False


def _replay_one(api: Any, run: Any, path: str, entry: dict[str, Any]) -> tuple[str, str]:
    """Link one recorded input of ``run``; returns ``(outcome, detail)``."""
    qualified = str(entry.get("qualified_name") or f"{entry.get('name')}:{entry.get('sha256')}")
    # an entry logged offline names the artifact by its content alias only: it is looked up in the run's
    # own project, never in another one that happens to hold the same name
    target = qualified if qualified.count("/") == 2 else f"{path}/{qualified}"
    try:
        artifact = api.artifact(target, type=entry.get("type"))
    except Exception as exc:
        return "not_found", f"{target}: {exc}; upload its run first (`wandb sync`), then run link again"
    sha = (getattr(artifact, "metadata", None) or {}).get("sha256")
    if entry.get("sha256") and sha and sha != entry["sha256"]:
        return "mismatch", f"{target} holds sha256 {sha}, the run used {entry['sha256']}: not linked"
    run.use_artifact(artifact)
    return "linked", target


def replay_lineage(*, project: str, entity: str | None = None, api: Any = None) -> list[dict[str, Any]]:
    """Once online: make the inputs recorded in each run's ``config.lineage.inputs`` real W&B edges.

    Runs logged offline (and uploaded with ``wandb sync``) have their inputs only in their config; this
    declares each as a ``use_artifact`` input of its run, unless the run already uses it (idempotent). One
    row per recorded input: ``run``, ``artifact``, ``outcome`` (``linked``, ``already_linked``,
    ``not_found``, ``mismatch``) and ``detail``. Raises TrackingError when W&B is offline.
    """
    if is_offline():
        raise TrackingError(
            "replaying lineage needs online W&B: log in (`wandb login`, or set WANDB_API_KEY) and unset "
            "WANDB_MODE=offline, upload the offline runs with `wandb sync`, then run `finetune-wb link` again"
        )
    if api is None:
        import wandb

        api = wandb.Api()
    if entity is None:
        entity = getattr(api, "default_entity", None)
    path = f"{entity}/{project}" if entity else project
    rows: list[dict[str, Any]] = []
    for run in api.runs(path):
        inputs = ((getattr(run, "config", None) or {}).get("lineage") or {}).get("inputs") or []
        if not inputs:
            continue
        used = list(run.used_artifacts())
        for entry in inputs:
            if _already_used(used, entry):
                outcome, detail = "already_linked", ""
            else:
                outcome, detail = _replay_one(api, run, path, entry)
            rows.append({"run": run.id, "artifact": entry.get("name"), "outcome": outcome, "detail": detail})
    return rows
