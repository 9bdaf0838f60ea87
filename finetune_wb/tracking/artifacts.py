"""What finetune_wb knows about the artifacts it logged: :class:`ArtifactRef` and the local record of them.

The record (``state_dir()/tracking/artifacts.json``) remembers each (type, name, sha256) with its OpenAI
file id, W&B version and the run that logged it, so logging the same data again returns the same
reference, and an artifact logged offline can still be named as an input later. :class:`ArtifactFileIndex`
lends that record to :func:`finetune_wb.jobs.upload.upload_file`, which knows nothing about W&B: an upload
then writes the file id into the dataset artifact's record, and finds an earlier upload through it.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field, computed_field

from finetune_wb.tracking.records import updating_record

logger = logging.getLogger("finetune_wb.tracking")

ARTIFACTS_RECORD = "artifacts.json"


class ArtifactRef(BaseModel):
    """What we know about a logged artifact, enough to use it as an input later (online or offline)."""

    name: str = Field(description="artifact name, without version or alias")
    type: str = Field(description='"dataset" or "model"')
    digest: str = Field(description="SHA-256 of the data (for models: of the model card JSON)")
    version: str | None = Field(default=None, description="'vN' once W&B assigned one; None offline")
    entity: str | None = None
    project: str | None = None
    file_id: str | None = Field(default=None, description="OpenAI file id, once the data is uploaded")
    wandb_digest: str | None = Field(default=None, description="W&B's manifest digest")
    run_id: str | None = Field(default=None, description="the run that logged this version first")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def qualified_name(self) -> str:
        """``entity/project/name:vN`` when known, else ``name:<sha256>`` (the alias every version carries)."""
        if self.version and self.entity and self.project:
            return f"{self.entity}/{self.project}/{self.name}:{self.version}"
        return f"{self.name}:{self.digest}"

    def lineage_entry(self) -> dict[str, Any]:
        """The compact form kept in a run's config under ``lineage``."""
        entry = {
            "name": self.name,
            "type": self.type,
            "sha256": self.digest,
            "qualified_name": self.qualified_name,
            "version": self.version,
            "openai_file_id": self.file_id,
            "wandb_digest": self.wandb_digest,
            "logged_by_run": self.run_id,
        }
        return {k: v for k, v in entry.items() if v is not None}


def _record_key(type_: str, name: str, digest: str) -> str:
    return f"{type_}/{name}/{digest}"


def recorded_artifacts(type_: str | None = None) -> list[ArtifactRef]:
    """Every artifact reference in the local record (optionally one type)."""
    with updating_record(ARTIFACTS_RECORD) as data:
        entries = dict(data.get("entries", {}))
    refs = [ArtifactRef.model_validate(v) for v in entries.values()]
    return [r for r in refs if type_ is None or r.type == type_]


def find_artifact(
    *, file_id: str | None = None, digest: str | None = None, type_: str | None = None
) -> ArtifactRef | None:
    """A recorded artifact with this OpenAI file id or SHA-256 (most recently recorded wins)."""
    for ref in reversed(recorded_artifacts(type_)):
        if (file_id and ref.file_id == file_id) or (digest and ref.digest == digest):
            return ref
    return None


def remember(ref: ArtifactRef) -> ArtifactRef:
    """Store ``ref`` in the local record, merging with what is there; returns the merged reference."""
    key = _record_key(ref.type, ref.name, ref.digest)
    with updating_record(ARTIFACTS_RECORD) as data:
        entries = data.setdefault("entries", {})
        old = entries.pop(key, None)
        if old:
            merged = ArtifactRef.model_validate(old)
            update = {k: v for k, v in ref.model_dump(exclude={"metadata"}).items() if v is not None}
            update.pop("run_id", None)  # the first run that logged it stays
            metadata = {**merged.metadata, **ref.metadata}
            if merged.file_id and not ref.file_id:
                metadata["openai_file_id"] = merged.file_id
            ref = merged.model_copy(update={**update, "metadata": metadata})
        entries[key] = ref.model_dump(mode="json", exclude={"qualified_name"})  # re-inserted: newest last
    return ref


def record_file_id(ref: ArtifactRef, file_id: str) -> ArtifactRef:
    """Remember that the data behind ``ref`` was uploaded as ``file_id`` (the logged artifact is unchanged)."""
    return remember(
        ref.model_copy(update={"file_id": file_id, "metadata": {**ref.metadata, "openai_file_id": file_id}})
    )


def refreshed(ref: ArtifactRef) -> ArtifactRef:
    """``ref`` completed from the local record (a file id or version learned after it was returned)."""
    with updating_record(ARTIFACTS_RECORD) as data:
        stored = data.get("entries", {}).get(_record_key(ref.type, ref.name, ref.digest))
    if not stored:
        return ref
    known = ArtifactRef.model_validate(stored)
    update = {
        k: getattr(known, k) for k in ("file_id", "version", "entity", "project") if getattr(ref, k) is None
    }
    return ref.model_copy(update={k: v for k, v in update.items() if v is not None})


class ArtifactFileIndex:
    """The dataset artifact record as an upload's second index (``upload_file(..., index=...)``).

    For fine-tuning data only: the upload's file id goes into the record of the dataset artifact with the
    same SHA-256 (``openai_file_id`` in its metadata), and when the upload registry has no entry, a file
    id recorded there is tried. The record is a second source only, so a failure to read or write it is
    logged and never breaks the upload.
    """

    purpose = "fine-tune"

    def file_id_for(self, sha256: str, *, purpose: str) -> str | None:
        if purpose != self.purpose:
            return None
        try:
            ref = find_artifact(digest=sha256, type_="dataset")
        except Exception as exc:
            logger.debug("could not read the dataset artifact record: %s", exc)
            return None
        return ref.file_id if ref is not None else None

    def remember(self, sha256: str, file_id: str, *, purpose: str) -> None:
        if purpose != self.purpose:
            return
        try:
            ref = find_artifact(digest=sha256, type_="dataset")
            if ref is not None and ref.file_id != file_id:
                record_file_id(ref, file_id)
        except Exception as exc:
            logger.debug("could not record %s with its dataset artifact: %s", file_id, exc)
