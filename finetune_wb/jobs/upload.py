"""De-duplicated, validated, resumable-in-parts file upload.

:func:`upload_file` is the one way finetune_wb puts a training file on the server:

1. the file (or a list of examples, written to JSONL first) is validated, and refused with the validator's
   report when it has errors (``validate=False`` skips this);
2. its SHA-256 is computed; a local registry (``state_dir()/uploads.json``) maps
   ``(digest, purpose, server)`` to the file id it was uploaded as, and for fine-tuning data the W&B
   dataset artifact record (``openai_file_id`` in the artifact's metadata) is the second place the mapping
   lives. A hit is confirmed with ``files.retrieve`` before it is re-used; a file that was deleted on the
   server is uploaded again;
3. small files go through ``files.create``; files above ``multipart_threshold`` (default 512 MB, the Files
   API's limit) go through the Uploads API in parts (default 64 MB) sent by a small thread pool, each part
   retried on its own when it fails;
4. it returns only once the server has processed the file, or raises :class:`UploadError` with the
   server's reason.

The registry stores ids, digests, sizes and the server's base URL, never credentials.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from finetune_wb._client import without_retries
from finetune_wb._paths import atomic_write_bytes, atomic_write_text, state_dir
from finetune_wb._retry import policy_or_default
from finetune_wb._secrets import safe_url
from finetune_wb.errors import DataError, DataValidationError, UploadError

if TYPE_CHECKING:  # pragma: no cover
    import openai
    from openai.types import FileObject

    from finetune_wb._retry import RetryPolicy

logger = logging.getLogger(__name__)

MB = 1024 * 1024
MULTIPART_THRESHOLD = 512 * MB
"""Files larger than this go through the Uploads API (the Files API accepts at most 512 MB)."""
PART_SIZE = 64 * MB
"""Size of one Uploads API part (the API's maximum)."""
MAX_UPLOAD_BYTES = 8 * 1024 * MB
"""The Uploads API accepts at most 8 GB per upload."""
REGISTRY_FILE = "uploads.json"

_registry_lock = threading.Lock()


class UploadRecord(BaseModel):
    """One entry of the local upload registry."""

    sha256: str
    purpose: str
    base_url: str
    file_id: str
    filename: str
    bytes: int
    uploaded_at: float


# --------------------------------------------------------------------------------------------- registry


def registry_path() -> Path:
    """Where the digest -> file id registry lives."""
    return state_dir() / REGISTRY_FILE


def _registry_key(sha256: str, purpose: str, base_url: str) -> str:
    return f"{sha256}|{purpose}|{base_url}"


def _read_registry() -> dict[str, dict[str, Any]]:
    path = registry_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable upload registry %s (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_registry(data: Mapping[str, Any]) -> None:
    atomic_write_text(registry_path(), json.dumps(data, indent=1, sort_keys=True))


@contextmanager
def _locked_registry() -> Iterator[None]:
    """Serialise registry updates between threads and, where ``fcntl`` exists, between processes."""
    with _registry_lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the atomic replace alone keeps the file whole
            yield
            return
        with open(registry_path().with_suffix(".lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def lookup_upload(sha256: str, *, purpose: str, base_url: str) -> UploadRecord | None:
    """The registry entry for this content on this server, if any (not confirmed with the server)."""
    with _locked_registry():
        raw = _read_registry().get(_registry_key(sha256, purpose, safe_url(base_url)))
    if raw is None:
        return None
    try:
        return UploadRecord.model_validate(raw)
    except ValueError:
        return None


def remember_upload(record: UploadRecord) -> None:
    """Add or replace a registry entry."""
    record = record.model_copy(update={"base_url": safe_url(record.base_url)})
    with _locked_registry():
        data = _read_registry()
        data[_registry_key(record.sha256, record.purpose, record.base_url)] = record.model_dump(mode="json")
        _write_registry(data)


def forget_upload(sha256: str, *, purpose: str, base_url: str) -> None:
    """Drop a registry entry (the file is gone from the server)."""
    with _locked_registry():
        data = _read_registry()
        if data.pop(_registry_key(sha256, purpose, safe_url(base_url)), None) is not None:
            _write_registry(data)


# --------------------------------------------------------------------------------------------- helpers


def file_digests(path: str | os.PathLike[str], *, chunk_size: int = 4 * MB) -> tuple[str, str]:
    """SHA-256 and MD5 (hex) of a file, read once in chunks."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def _example_to_dict(item: Any) -> Any:
    if hasattr(item, "to_openai"):
        return item.to_openai()
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", exclude_none=True)
    if isinstance(item, Mapping):
        return dict(item)
    raise DataError(
        f"cannot upload an item of type {type(item).__name__}: pass a path, or ChatExample / "
        "PreferenceExample objects or dicts"
    )


def _stage_examples(examples: Iterable[Any]) -> Path:
    """Write examples to a content-addressed JSONL file under the state directory."""
    lines = [json.dumps(_example_to_dict(ex), ensure_ascii=False) for ex in examples]
    if not lines:
        raise DataError("no examples to upload: the list is empty")
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    digest = hashlib.sha256(payload).hexdigest()
    staging = state_dir() / "staged"
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"examples-{digest[:16]}.jsonl"
    if not path.exists():
        atomic_write_bytes(path, payload)
    return path


def _validate(path: Path, *, model: str | None) -> None:
    from finetune_wb.validation.validate import validate_file

    report = validate_file(path, model=model) if model else validate_file(path)
    if not report.ok:
        raise DataValidationError(
            f"{path} was not uploaded because the validator found {len(report.errors)} error(s); fix them "
            f"or pass validate=False to upload anyway.\n{report.summary()}",
            report=report,
        )


# --------------------------------------------------------------------------------------------- upload


def upload_file(
    path_or_examples: str | os.PathLike[str] | Iterable[Any],
    *,
    client: openai.OpenAI | None = None,
    purpose: str = "fine-tune",
    validate: bool = True,
    model: str | None = None,
    reuse: bool = True,
    multipart_threshold: int = MULTIPART_THRESHOLD,
    part_size: int = PART_SIZE,
    max_concurrency: int = 4,
    progress: bool = True,
    processing_timeout: float | None = 1800.0,
    poll_interval: float = 0.5,
    max_poll_interval: float = 10.0,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> FileObject:
    """Upload a JSONL file (or examples) once, and return the processed server file.

    Args:
        path_or_examples: a path to a JSONL file, or an iterable of ChatExample / PreferenceExample / dicts
            (written to a staged JSONL file under the state directory first).
        client: an ``openai.OpenAI`` / ``AzureOpenAI``; None builds one from the environment.
        purpose: the file purpose (``"fine-tune"`` for training and validation files).
        validate: run the validator first and refuse a file with errors (:class:`DataValidationError`).
        model: the base model the validator checks token limits against.
        reuse: re-use an identical file already uploaded to the same server (confirmed with the server).
        multipart_threshold: files larger than this (bytes) use the Uploads API in parts.
        part_size: bytes per part for the Uploads API.
        max_concurrency: parts in flight at once.
        progress: show a progress bar for multi-part uploads and processing.
        processing_timeout: seconds to wait for the server to process the file (None: no limit).
        retry: the retry policy for each request (default: ``DEFAULT_RETRY`` with ``sleep``).
        sleep, clock: injectable ``time.sleep`` / ``time.monotonic`` for tests.

    Raises:
        DataValidationError: the validator found errors.
        UploadError: the upload failed or the server could not process the file.
    """
    from finetune_wb._client import base_url_of, get_client

    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    policy = policy_or_default(retry, sleep)

    if isinstance(path_or_examples, (str, os.PathLike)):
        path = Path(path_or_examples)
        if not path.is_file():
            raise DataError(f"cannot upload {path}: no such file")
    else:
        path = _stage_examples(path_or_examples)

    if validate and purpose == "fine-tune":
        _validate(path, model=model)

    client = get_client(client)
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"cannot upload {path}: the file is empty")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{path} is {size / 1024**3:.1f} GB; the Uploads API accepts at most 8 GB per file. "
            "Split the data into several files."
        )
    sha256, md5 = file_digests(path)
    base_url = base_url_of(client)

    def processed(file_obj: FileObject) -> FileObject:
        return _wait_processed(
            client,
            file_obj,
            policy=policy,
            timeout=processing_timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            sleep=sleep,
            clock=clock,
        )

    def remember(file_obj: FileObject) -> None:
        remember_upload(
            UploadRecord(
                sha256=sha256,
                purpose=purpose,
                base_url=base_url,
                file_id=file_obj.id,
                filename=path.name,
                bytes=size,
                uploaded_at=float(getattr(file_obj, "created_at", None) or time.time()),
            )
        )
        if purpose == "fine-tune":
            _record_in_artifacts(sha256, file_obj.id)

    if reuse:
        existing = _reusable_file(
            client, sha256, size=size, purpose=purpose, base_url=base_url, policy=policy
        )
        if existing is not None:
            logger.info("re-using %s for %s (sha256 %s)", existing.id, path, sha256[:12])
            remember(existing)
            return processed(existing)

    if size > multipart_threshold:
        from finetune_wb.jobs.multipart import upload_multipart

        file_obj = upload_multipart(
            client,
            path,
            size=size,
            md5=md5,
            purpose=purpose,
            part_size=part_size,
            max_concurrency=max_concurrency,
            progress=progress,
            policy=policy,
        )
    else:
        file_obj = _upload_single(client, path, purpose=purpose, sha256=sha256, size=size, policy=policy)

    remember(file_obj)
    return processed(file_obj)


def _artifact_file_id(sha256: str) -> str | None:
    """The OpenAI file id recorded with a W&B dataset artifact of this content, if tracking knows one."""
    try:
        from finetune_wb.tracking.datasets import find_artifact

        ref = find_artifact(digest=sha256, type_="dataset")
    except Exception as exc:  # tracking's record is a second source only: never let it break an upload
        logger.debug("could not read the dataset artifact record: %s", exc)
        return None
    return ref.file_id if ref is not None else None


def _record_in_artifacts(sha256: str, file_id: str) -> None:
    """Tell tracking's record that the dataset artifact with this content was uploaded as ``file_id``, so
    the artifact metadata carries ``openai_file_id`` (see :func:`finetune_wb.tracking.record_file_id`)."""
    try:
        from finetune_wb.tracking.datasets import find_artifact, record_file_id

        ref = find_artifact(digest=sha256, type_="dataset")
        if ref is not None and ref.file_id != file_id:
            record_file_id(ref, file_id)
    except Exception as exc:
        logger.debug("could not record %s with its dataset artifact: %s", file_id, exc)


def _reusable_file(
    client: Any, sha256: str, *, size: int, purpose: str, base_url: str, policy: RetryPolicy
) -> FileObject | None:
    """A file the server already has for this content, found through the local registry or (for
    fine-tuning data) the W&B dataset artifact record, and confirmed with ``files.retrieve``."""
    import openai

    record = lookup_upload(sha256, purpose=purpose, base_url=base_url)
    candidates: list[tuple[str, bool]] = []  # (file id, from the registry)
    if record is not None:
        candidates.append((record.file_id, True))
    if purpose == "fine-tune":
        from_artifact = _artifact_file_id(sha256)
        if from_artifact is not None and (record is None or from_artifact != record.file_id):
            candidates.append((from_artifact, False))
    for file_id, in_registry in candidates:
        try:
            file_obj = policy.call(without_retries(client).files.retrieve, file_id)
        except (openai.NotFoundError, openai.BadRequestError):
            # Gone (deleted, expired), or an id from another server (an artifact logged elsewhere).
            logger.info("%s is not on %s; not re-using it", file_id, safe_url(base_url))
            if in_registry:
                forget_upload(sha256, purpose=purpose, base_url=base_url)
            continue
        status = getattr(file_obj, "status", None)
        usable = (
            status not in ("error", "deleted")
            and getattr(file_obj, "bytes", size) == size
            and getattr(file_obj, "purpose", purpose) == purpose
        )
        if not usable:
            if in_registry:
                forget_upload(sha256, purpose=purpose, base_url=base_url)
            continue
        return file_obj  # type: ignore[no-any-return]
    return None


def _upload_single(
    client: Any, path: Path, *, purpose: str, sha256: str, size: int, policy: RetryPolicy
) -> FileObject:
    """``files.create`` with retries that do not leave a second copy behind.

    Like a job create, an upload whose answer was lost (a 500 after the server stored the file, a dropped
    connection) would be stored twice if simply sent again. Before each retry, after the back-off, the
    newest files are searched for the one the failed attempt made (see
    :func:`finetune_wb.jobs.multipart.find_uploaded_file`) and that file is used instead.
    """
    import openai

    from finetune_wb.jobs.multipart import find_uploaded_file

    raw = without_retries(client)
    since = time.time() - 60  # slack for the server's clock
    attempt = 0
    while True:
        attempt += 1
        try:
            with open(path, "rb") as fh:  # reopened for every attempt, so a retry re-sends the whole file
                return raw.files.create(file=(path.name, fh), purpose=purpose)  # type: ignore[no-any-return]
        except Exception as exc:
            if not policy.retry_on(exc):
                if isinstance(exc, openai.APIError):
                    raise UploadError(f"uploading {path} failed: {exc}") from exc
                raise
            policy.sleep(policy.wait_seconds(exc, attempt))
            found = find_uploaded_file(
                raw, filename=path.name, size=size, purpose=purpose, since=since, sha256=sha256, policy=policy
            )
            if found is not None:
                logger.info("the failed upload of %s had reached the server as %s; using it", path, found.id)
                return found  # type: ignore[no-any-return]
            if attempt >= policy.max_attempts:
                raise UploadError(f"uploading {path} failed after {attempt} attempts: {exc}") from exc


def _wait_processed(
    client: Any,
    file_obj: FileObject,
    *,
    policy: RetryPolicy,
    timeout: float | None,
    poll_interval: float,
    max_poll_interval: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> FileObject:
    """Poll ``files.retrieve`` until the file is processed; raise UploadError on ``error`` or timeout."""
    raw = without_retries(client)
    start = clock()
    interval = poll_interval
    while True:
        status = getattr(file_obj, "status", None)
        if status == "processed" or status is None:
            return file_obj
        if status in ("error", "deleted"):
            details = getattr(file_obj, "status_details", None) or f"status {status!r}, no reason given"
            raise UploadError(f"the server could not process {file_obj.id}: {details}", file_id=file_obj.id)
        if timeout is not None and clock() - start >= timeout:
            raise UploadError(
                f"{file_obj.id} is still {status!r} after {timeout:g} s; it may finish later - check with "
                f"client.files.retrieve({file_obj.id!r}) and pass the id on once it is processed",
                file_id=file_obj.id,
            )
        sleep(interval)
        interval = min(interval * 2, max_poll_interval)
        file_obj = policy.call(raw.files.retrieve, file_obj.id)
