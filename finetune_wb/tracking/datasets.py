"""Dataset artifacts: a JSONL file, its statistics and its validation summary, logged to a W&B run.

Identity is the SHA-256 of the file's bytes. Every artifact version gets that digest as an alias, so
``name:<sha256>`` names exactly this content online and after an offline run is synced. A local record
(``state_dir()/tracking/artifacts.json``) remembers each (type, name, sha256) with its OpenAI file id, so
logging the same data again returns the same reference and never a new version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from finetune_wb._paths import atomic_write_bytes
from finetune_wb._secrets import scrub
from finetune_wb.errors import DataError, TrackingError
from finetune_wb.tracking.mode import is_offline, offline_hint
from finetune_wb.tracking.records import records_dir, safe_name, updating_record
from finetune_wb.tracking.tables import INVALID, describe, examples_table, iter_records, target_text

logger = logging.getLogger("finetune_wb.tracking")

ARTIFACTS_RECORD = "artifacts.json"
MAX_LABELS = 20
DEFAULT_TABLE_ROWS = 1000


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


# ---------------------------------------------------------------------------------------------------------


def _examples_to_bytes(examples: Iterable[Any]) -> bytes:
    lines = []
    for i, ex in enumerate(examples):
        if hasattr(ex, "to_openai"):
            obj = ex.to_openai()
        elif hasattr(ex, "model_dump"):
            obj = ex.model_dump(mode="json", exclude_none=True)
        elif isinstance(ex, dict):
            obj = ex
        else:
            raise DataError(
                f"example {i}: expected a ChatExample, PreferenceExample or dict, got {type(ex).__name__}"
            )
        lines.append(json.dumps(obj, ensure_ascii=False, sort_keys=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def dataset_statistics(data: bytes) -> dict[str, Any]:
    """Counts, message shape and label balance of a JSONL training file (chat or DPO, any shape)."""
    formats: Counter[str] = Counter()
    targets: Counter[str] = Counter()
    n_lines = n_invalid = n_tools = n_targets = 0
    min_msgs, max_msgs, sum_msgs, n_with_msgs = 0, 0, 0, 0
    for _, obj in iter_records(data):
        n_lines += 1
        if obj is INVALID:
            n_invalid += 1
            continue
        fmt, n_messages, has_tools = describe(obj)
        formats[fmt] += 1
        n_tools += has_tools
        if n_messages:
            min_msgs = n_messages if not n_with_msgs else min(min_msgs, n_messages)
            max_msgs = max(max_msgs, n_messages)
            sum_msgs += n_messages
            n_with_msgs += 1
        if fmt == "chat" and (target := target_text(obj)) is not None:
            n_targets += 1
            if len(targets) <= MAX_LABELS:  # past that these are not labels: stop counting distinct answers
                targets[target.strip()] += 1
    stats: dict[str, Any] = {
        "n_examples": n_lines - n_invalid,
        "n_lines": n_lines,
        "n_invalid_lines": n_invalid,
        "formats": dict(formats),
        "format": (formats.most_common(1)[0][0] if len(formats) == 1 else "mixed") if formats else "empty",
        "n_with_tools": n_tools,
    }
    if n_with_msgs:
        stats["messages_per_example"] = {
            "min": min_msgs,
            "mean": round(sum_msgs / n_with_msgs, 3),
            "max": max_msgs,
        }
    if (
        targets
        and len(targets) <= MAX_LABELS
        and len(targets) * 2 <= n_targets
        and all(len(t) <= 64 for t in targets)
    ):
        stats["label_balance"] = dict(sorted(targets.items(), key=lambda kv: (-kv[1], kv[0])))
        stats["n_labels"] = len(targets)
    return stats


def _report_metadata(report: Any) -> dict[str, Any]:
    """The parts of a ValidationReport worth keeping with the data (duck-typed: the validator owns the model)."""
    out: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    for attr in ("ok", "n_examples", "format", "n_epochs", "estimated_cost_usd"):
        value = getattr(report, attr, None)
        if value is not None and not callable(value):
            validation[attr] = value
    errors = getattr(report, "errors", None)
    if errors is not None:
        validation["n_errors"] = len(errors)
    issues = getattr(report, "issues", None)
    if issues is not None:
        validation["n_issues"] = len(issues)
        validation["issue_codes"] = dict(Counter(str(getattr(i, "code", "?")) for i in issues))
    summary = getattr(report, "summary", None)
    if callable(summary):
        try:
            validation["summary"] = str(summary())
        except Exception as exc:  # a report that cannot summarise itself must not stop tracking
            logger.debug("report.summary() failed: %s", exc)
    if validation:
        out["validation"] = validation
    tokens = getattr(report, "tokens", None)
    if tokens is not None:
        out["tokens"] = tokens.model_dump(mode="json") if hasattr(tokens, "model_dump") else tokens
        billed = getattr(tokens, "billed", None)
        if billed is not None:
            out["estimated_billed_tokens"] = billed
    return json.loads(json.dumps(scrub(out), default=str))


def _validate_for_metadata(path: Path, model: str | None) -> Any:
    """Run the validator for token statistics when the caller passed no report."""
    try:
        from finetune_wb.validation.validate import validate_file
    except ImportError:  # the validator is optional for tracking
        return None
    try:
        return validate_file(path, model=model) if model else validate_file(path)
    except Exception as exc:
        logger.warning("could not compute token statistics for %s: %s", path, exc)
        return None


def log_dataset(
    path_or_examples: str | Path | Sequence[Any],
    *,
    run: Any,
    split: str = "train",
    name: str | None = None,
    report: Any = None,
    file_id: str | None = None,
    model: str | None = None,
    validate: bool = True,
    table_rows: int | None = DEFAULT_TABLE_ROWS,
    description: str | None = None,
    as_input: bool = False,
    file_name: str | None = None,
) -> ArtifactRef:
    """Log a JSONL dataset (or a list of examples) as a ``dataset`` artifact on ``run`` and return its ref.

    Metadata: counts, label balance (when the last assistant answers look like labels), token statistics
    and the validation summary (from ``report``, or by running the validator when ``validate``), the
    SHA-256 and the OpenAI file id when known. The artifact holds the file and a table of the first
    ``table_rows`` examples (None: all). The run is never finished here.

    ``as_input``: the data is an input of ``run`` (e.g. a fine-tune run syncing its training file). Online
    the artifact is logged through ``use_artifact``; offline W&B cannot do that, so it is logged as an
    output and also listed under ``config["lineage"]["inputs"]``.
    """
    if run is None:
        raise TrackingError("log_dataset needs a W&B run: pass run=wandb.init(...) (offline works too)")
    if isinstance(path_or_examples, (str, Path)):
        path = Path(path_or_examples)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read dataset {path}: {exc}") from exc
        stem, default_file_name = path.stem, path.name
    else:
        data = _examples_to_bytes(path_or_examples)
        path = cached_copy(data)
        stem, default_file_name = "dataset", f"{safe_name(split, fallback='data')}.jsonl"
    file_name = file_name or default_file_name
    digest = hashlib.sha256(data).hexdigest()
    art_name = safe_name(name or f"{stem}-{split}", fallback="dataset")
    known = find_artifact(digest=digest, type_="dataset")
    file_id = file_id or (known.file_id if known else None)

    already = _logged_in_run(run).get((art_name, digest))
    if already is not None:
        ref = already
        if file_id and ref.file_id != file_id:
            ref = record_file_id(ref, file_id)
        return ref

    metadata: dict[str, Any] = {
        "split": split,
        "sha256": digest,
        "bytes": len(data),
        "file_name": file_name,
        "local_path": str(path.resolve()),  # where this machine has the data (evaluation reads it)
    }
    metadata.update(dataset_statistics(data))
    if report is None and validate:
        report = _validate_for_metadata(path, model)
    if report is not None:
        metadata.update(_report_metadata(report))
    if file_id:
        metadata["openai_file_id"] = file_id
    metadata = scrub(metadata)

    import wandb

    artifact = wandb.Artifact(art_name, type="dataset", description=description, metadata=metadata)
    artifact.add_file(str(path), name=file_name)
    if table_rows != 0:
        artifact.add(examples_table(data, max_rows=table_rows), "examples")
    offline = is_offline(run)
    try:
        if as_input and not offline:
            run.use_artifact(artifact, aliases=["latest", digest])
        else:
            run.log_artifact(artifact, aliases=["latest", digest])
    except Exception as exc:
        raise TrackingError(f"W&B could not log dataset artifact {art_name!r} ({path}): {exc}") from exc
    ref = ArtifactRef(
        name=art_name,
        type="dataset",
        digest=digest,
        file_id=file_id,
        wandb_digest=artifact.digest,
        run_id=getattr(run, "id", None),
        metadata=metadata,
    )
    if not offline:
        ref = _with_version(ref, artifact)
        if ref.project is None:  # no version yet: it still lives in the run's project
            ref = ref.model_copy(
                update={
                    "entity": getattr(run, "entity", None) or None,
                    "project": getattr(run, "project", None) or None,
                }
            )
    else:
        offline_hint(run)
    ref = remember(ref)
    _logged_in_run(run)[(art_name, digest)] = ref
    if as_input:
        _add_lineage(run, "inputs", ref.lineage_entry())
    return ref


def cached_copy(data: bytes) -> Path:
    """Keep ``data`` under ``state_dir()/tracking/data/<sha256>.jsonl`` (written once) and return the path."""
    directory = records_dir() / "data"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{hashlib.sha256(data).hexdigest()}.jsonl"
    if not path.exists():
        atomic_write_bytes(path, data)
    return path


# (name, sha256) -> ref, per run id: the same data logged twice to one run is logged once.
_RUN_LOG: dict[str, dict[tuple[str, str], ArtifactRef]] = {}


def _logged_in_run(run: Any) -> dict[tuple[str, str], ArtifactRef]:
    return _RUN_LOG.setdefault(str(getattr(run, "id", id(run))), {})


def _with_version(ref: ArtifactRef, artifact: Any) -> ArtifactRef:
    """Online only: wait for W&B to commit the version and read its number and path."""
    try:
        artifact.wait()
        return ref.model_copy(
            update={"version": artifact.version, "entity": artifact.entity, "project": artifact.project}
        )
    except Exception as exc:  # the data is logged; only the version number is missing
        logger.warning("W&B did not report a version for %s yet (%s); using its digest alias", ref.name, exc)
        return ref


# ---------------------------------------------------------------------------------------------------------


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
        ref = _refreshed(ref)
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
    _add_lineage(run, "inputs", ref.lineage_entry())
    return ref


def _refreshed(ref: ArtifactRef) -> ArtifactRef:
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


def _online_name(run: Any, ref: ArtifactRef) -> str:
    if ref.version and ref.entity and ref.project:
        return ref.qualified_name
    entity = ref.entity or getattr(run, "entity", None)
    project = ref.project or getattr(run, "project", None)
    prefix = f"{entity}/{project}/" if entity and project else ""
    return f"{prefix}{ref.name}:{ref.version or ref.digest}"


def _add_lineage(run: Any, kind: str, entry: dict[str, Any]) -> None:
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
