"""Create a fine-tuning job once per training request: the same file, spec and server re-attach to one job.

Running ``finetune-wb train`` again after a Ctrl-C or a lost terminal must not start a second paid job. A
request is identified by its *fingerprint*: a short SHA-256 of the training file's content digest (or its file
id), the validation file's, and the job's spec (model, method, hyperparameters, suffix, seed, metadata,
integrations). The fingerprint goes into the job's metadata (``finetune_wb_train_fingerprint``, 32 hex chars,
within OpenAI's 16 keys / 64-char keys / 512-char values) and into a local record,
``state_dir()/train_jobs.json``, keyed by fingerprint and server (:func:`~finetune_wb._secrets.safe_url`).

The record is written *before* the create call with the ``finetune_wb_request_id`` that
:func:`~finetune_wb.jobs.operations.create_job` tags the job with, so a process killed between the two is
re-attached too (the job is adopted by its request id). Without a local record, the job is found on the
server by its fingerprint. A job that failed or was cancelled is never re-attached: a new one is created.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb._paths import atomic_write_text, process_lock, sha256_file, state_dir
from finetune_wb._secrets import safe_url
from finetune_wb.errors import JobError

if TYPE_CHECKING:  # pragma: no cover
    from openai.types.fine_tuning import FineTuningJob

    from finetune_wb.jobs.registry import FileIndex
    from finetune_wb.schema import JobSpec

logger = logging.getLogger(__name__)

FINGERPRINT_KEY = "finetune_wb_train_fingerprint"
"""Metadata key carrying the fingerprint of (training file, validation file, spec)."""
RECORD_FILE = "train_jobs.json"
"""The local record of jobs created by ``finetune-wb train``, under the state directory."""
NOT_REATTACHED_STATUSES = frozenset({"failed", "cancelled"})
"""A job in one of these states is not re-attached; a re-run creates a new job."""
LOCK_TIMEOUT = 300.0


@dataclass
class TrainOutcome:
    """What :func:`create_or_reattach` did: the job, whether it already existed, and what to tell the user."""

    job: FineTuningJob
    reattached: bool
    fingerprint: str
    notes: list[str]


def file_key(file: str | os.PathLike[str] | None) -> str | None:
    """``sha256:<hex>`` of a local file's content, or ``id:<file id>`` for a file id; None for no file."""
    if file is None:
        return None
    if isinstance(file, os.PathLike) or Path(str(file)).is_file():
        return f"sha256:{sha256_file(file)}"
    return f"id:{file}"


def train_fingerprint(
    spec: JobSpec, *, training_file: str | os.PathLike[str], validation_file: str | os.PathLike[str] | None
) -> str:
    """32 hex characters identifying (training file content, validation file content, spec)."""
    params = spec.to_create_params(training_file="", validation_file=None)
    params.pop("training_file", None)
    meta = {k: v for k, v in (params.get("metadata") or {}).items() if not k.startswith("finetune_wb_")}
    params["metadata"] = meta
    canonical = {
        "training": file_key(training_file),
        "validation": file_key(validation_file),
        "spec": params,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# ----------------------------------------------------------------------------------------- local record


def record_path() -> Path:
    """Where the fingerprint -> job record lives."""
    return state_dir() / RECORD_FILE


def _key(fingerprint: str, server: str) -> str:
    return f"{fingerprint}|{server}"


def _read() -> dict[str, dict[str, Any]]:
    path = record_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable train-job record %s (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _update(fingerprint: str, server: str, entry: dict[str, Any]) -> None:
    path = record_path()
    with process_lock(path.with_suffix(".lock"), timeout=60.0, what=f"the train-job record {path}"):
        data = _read()
        data[_key(fingerprint, server)] = entry
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def lookup(fingerprint: str, server: str) -> dict[str, Any] | None:
    """The local entry for this request on this server (``request_id``, ``job_id`` or None), if any."""
    entry = _read().get(_key(fingerprint, server))
    return entry if isinstance(entry, dict) else None


# ----------------------------------------------------------------------------------------- create/attach


def describe_age(created_at: float | None, now: float | None = None) -> str:
    """'created 3 min ago' and the like."""
    if not created_at:
        return "created earlier"
    seconds = max(0.0, (now or time.time()) - float(created_at))
    if seconds < 90:
        return f"created {int(seconds)} s ago"
    if seconds < 5400:
        return f"created {round(seconds / 60)} min ago"
    if seconds < 48 * 3600:
        return f"created {seconds / 3600:.1f} h ago"
    return f"created {seconds / 86400:.1f} days ago"


def _from_record(entry: dict[str, Any], *, client: Any, notes: list[str]) -> FineTuningJob | None:
    """The job the local entry names, if it is still worth re-attaching to."""
    from finetune_wb.jobs.operations import find_job_by_request_id, get_job

    job: Any = None
    if entry.get("job_id"):
        try:
            job = get_job(entry["job_id"], client=client)
        except JobError:
            notes.append(f"the recorded job {entry['job_id']} is unknown to this server")
            return None
    elif entry.get("request_id"):
        # An earlier run was stopped between recording the request and the server's answer.
        job = find_job_by_request_id(entry["request_id"], client=client)
    if job is None:
        return None
    if job.status in NOT_REATTACHED_STATUSES:
        notes.append(f"the earlier job {job.id} for this file and spec was {job.status}; creating a new one")
        return None
    return job  # type: ignore[no-any-return]


def _from_server(fingerprint: str, *, client: Any, notes: list[str]) -> FineTuningJob | None:
    from finetune_wb.jobs.operations import find_jobs_by_metadata

    skipped = []
    for job in find_jobs_by_metadata(FINGERPRINT_KEY, fingerprint, client=client):
        if job.status in NOT_REATTACHED_STATUSES:
            skipped.append(f"{job.id} ({job.status})")
            continue
        return job  # type: ignore[no-any-return]
    if skipped:
        notes.append(f"earlier jobs for this file and spec ended: {', '.join(skipped)}; creating a new one")
    return None


def create_or_reattach(
    spec: JobSpec,
    *,
    training_file: str | os.PathLike[str],
    validation_file: str | os.PathLike[str] | None = None,
    client: Any,
    index: FileIndex | None = None,
    new: bool = False,
    provider: Any = None,
) -> TrainOutcome:
    """The job for this (training file, validation file, spec) on ``client``'s server: found, or created once.

    Unless ``new``, a job created earlier for the same request (local record first, then the server's jobs
    by their fingerprint metadata) is returned with ``reattached=True``, unless it failed or was cancelled.
    Otherwise a new job is created, with the fingerprint in its metadata; the local record gets the request
    id before the create call and the job id after it. Two processes creating the same request at once are
    serialised by a lock (``state_dir()/locks/train-<fingerprint>.lock``): the second one re-attaches.
    """
    from finetune_wb._client import base_url_of
    from finetune_wb.jobs.operations import create_job

    server = base_url_of(client)
    fingerprint = train_fingerprint(spec, training_file=training_file, validation_file=validation_file)
    notes: list[str] = []
    lock = (
        state_dir() / "locks" / f"train-{hashlib.sha256(_key(fingerprint, server).encode()).hexdigest()[:24]}"
    )
    with process_lock(
        f"{lock}.lock",
        timeout=LOCK_TIMEOUT,
        what=f"creating the fine-tuning job for request {fingerprint[:12]} on {server}",
        error=JobError,
    ):
        entry = lookup(fingerprint, server)
        if not new:
            job = _from_record(entry, client=client, notes=notes) if entry else None
            if job is None:
                job = _from_server(fingerprint, client=client, notes=notes)
            if job is not None:
                if not entry or entry.get("job_id") != job.id:
                    _update(fingerprint, server, _entry(job.id, None, spec, fingerprint, server))
                return TrainOutcome(job=job, reattached=True, fingerprint=fingerprint, notes=notes)
        request_id = uuid.uuid4().hex
        _update(fingerprint, server, _entry(None, request_id, spec, fingerprint, server))
        spec = spec.model_copy(update={"metadata": {**spec.metadata, FINGERPRINT_KEY: fingerprint}})
        job = create_job(
            spec,
            training_file=training_file,
            validation_file=validation_file,
            client=client,
            request_id=request_id,
            index=index,
            provider=provider,
        )
        _update(fingerprint, server, _entry(job.id, request_id, spec, fingerprint, server))
    return TrainOutcome(job=job, reattached=False, fingerprint=fingerprint, notes=notes)


def _entry(
    job_id: str | None, request_id: str | None, spec: JobSpec, fingerprint: str, server: str
) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "base_url": safe_url(server),
        "job_id": job_id,
        "request_id": request_id,
        "model": spec.model,
        "recorded_at": time.time(),
    }
