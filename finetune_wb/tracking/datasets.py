"""Dataset artifacts: a JSONL file, its statistics and its validation summary, logged to a W&B run.

Identity is the SHA-256 of the file's bytes. Every artifact version gets that digest as an alias, so
``name:<sha256>`` names exactly this content online and after an offline run is synced. The local record
(:mod:`finetune_wb.tracking.artifacts`) remembers each (type, name, sha256) with its OpenAI file id, so
logging the same data again returns the same reference and never a new version.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune_wb._paths import write_once
from finetune_wb._secrets import scrub
from finetune_wb.errors import DataError, TrackingError
from finetune_wb.jobs.upload import examples_jsonl
from finetune_wb.tracking.artifacts import ArtifactRef, find_artifact, record_file_id, remember
from finetune_wb.tracking.dataset_stats import dataset_statistics, report_metadata
from finetune_wb.tracking.lineage import add_lineage
from finetune_wb.tracking.mode import is_offline, offline_hint
from finetune_wb.tracking.quality import (
    findings_table,
    masked,
    masked_examples_table,
    needs_masking,
    quality_metadata,
)
from finetune_wb.tracking.records import records_dir, safe_name
from finetune_wb.tracking.tables import examples_table

logger = logging.getLogger("finetune_wb.tracking")

DEFAULT_TABLE_ROWS = 1000


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
    quality: Any = None,
) -> ArtifactRef:
    """Log a JSONL dataset (or a list of examples) as a ``dataset`` artifact on ``run`` and return its ref.

    Metadata: counts, label balance (when the last assistant answers look like labels), token statistics
    and the validation summary (from ``report``, or by running the validator when ``validate``), the
    SHA-256 and the OpenAI file id when known. The artifact holds the file and a table of the first
    ``table_rows`` examples (None: all). The run is never finished here. ``quality`` (a
    :class:`~finetune_wb.validation.quality.QualityReport`) adds its counts to the metadata
    (``metadata["quality"]``), a ``quality_findings`` table, and masks the examples table when it found
    secrets or personal data.

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
        data = examples_jsonl(path_or_examples)
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
        metadata.update(report_metadata(report))
    if file_id:
        metadata["openai_file_id"] = file_id
    if quality is not None:
        metadata["quality"] = quality_metadata(quality)
        if needs_masking(quality):
            metadata = masked(metadata)
    metadata = scrub(metadata)

    import wandb

    artifact = wandb.Artifact(art_name, type="dataset", description=description, metadata=metadata)
    artifact.add_file(str(path), name=file_name)
    if table_rows != 0:
        if quality is not None and needs_masking(quality):
            artifact.add(masked_examples_table(data, max_rows=table_rows), "examples")
        else:
            artifact.add(examples_table(data, max_rows=table_rows), "examples")
    if quality is not None:
        artifact.add(findings_table(quality), "quality_findings")
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
        # the project it belongs to, so that a sync into another project does not take it for its own
        ref = ref.model_copy(
            update={
                "entity": getattr(run, "entity", None) or None,
                "project": getattr(run, "project", None) or None,
            }
        )
    ref = remember(ref)
    _logged_in_run(run)[(art_name, digest)] = ref
    if as_input:
        add_lineage(run, "inputs", ref.lineage_entry())
    return ref


def cached_copy(data: bytes) -> Path:
    """Keep ``data`` under ``state_dir()/tracking/data/<sha256>.jsonl`` (written once) and return the path."""
    return write_once(records_dir() / "data", f"{hashlib.sha256(data).hexdigest()}.jsonl", data)


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
