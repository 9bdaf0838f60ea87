"""De-duplicated, validated, resumable-in-parts file upload.

:func:`upload_file` is the one way finetune_wb puts a training file on the server:

1. the file (or a list of examples, written to JSONL first) is validated, and refused with the validator's
   report when it has errors (``validate=False`` skips this);
2. its SHA-256 is computed; the local registry (:mod:`finetune_wb.jobs.registry`) maps
   ``(digest, purpose, server)`` to the file id it was uploaded as, and an ``index`` the caller passes
   (tracking's W&B dataset artifact record, say) is the second place the mapping lives. A hit is confirmed
   with ``files.retrieve`` before it is re-used; a file that was deleted on the server is uploaded again;
3. small files go through ``files.create``; files above ``multipart_threshold`` (default 512 MB, the Files
   API's limit) go through the Uploads API in parts (default 64 MB, :mod:`finetune_wb.jobs.multipart`)
   sent by a small thread pool, each part retried on its own when it fails;
4. it returns only once the server has processed the file, or raises :class:`UploadError` with the
   server's reason.

Each attempt is recorded locally before its first request (:mod:`finetune_wb.jobs.upload_progress`), so a
process killed mid-upload is not repeated by the next call with the same content: a ``files.create`` whose
answer never arrived is found on the server and adopted, and a multi-part upload is resumed where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from finetune_wb._client import without_retries
from finetune_wb._paths import state_dir, write_once
from finetune_wb._retry import policy_or_default
from finetune_wb._secrets import safe_url
from finetune_wb.errors import DataError, DataValidationError, UploadError
from finetune_wb.jobs.files import find_uploaded_file, wait_processed
from finetune_wb.jobs.multipart import CLOCK_SLACK, cancel_quietly, upload_multipart
from finetune_wb.jobs.registry import (
    FileIndex,
    UploadRecord,
    claim,
    forget_upload,
    lookup_upload,
    remember_upload,
)
from finetune_wb.jobs.upload_progress import AttemptJournal, UploadAttempt, clear_attempt, load_attempt

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


def examples_jsonl(examples: Iterable[Any]) -> bytes:
    """ChatExample / PreferenceExample objects or dicts as JSONL bytes (UTF-8, one object a line; b"" for none).

    The bytes an upload stages and a dataset artifact logs for the same examples are the same, so both
    find each other by SHA-256.
    """
    lines = []
    for i, item in enumerate(examples):
        if hasattr(item, "to_openai"):
            obj = item.to_openai()
        elif isinstance(item, BaseModel):
            obj = item.model_dump(mode="json", exclude_none=True)
        elif isinstance(item, Mapping):
            obj = dict(item)
        else:
            raise DataError(
                f"example {i}: expected a ChatExample, PreferenceExample or dict, got {type(item).__name__} "
                "(or pass the path of a JSONL file)"
            )
        lines.append(json.dumps(obj, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _stage_examples(examples: Iterable[Any]) -> Path:
    """Write examples to a content-addressed JSONL file under the state directory."""
    payload = examples_jsonl(examples)
    if not payload:
        raise DataError("no examples to upload: the list is empty")
    digest = hashlib.sha256(payload).hexdigest()
    return write_once(state_dir() / "staged", f"examples-{digest[:16]}.jsonl", payload)


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
    index: FileIndex | None = None,
) -> FileObject:
    """Upload a JSONL file (or examples) once, and return the processed server file.

    Args:
        path_or_examples: a path to a JSONL file, or an iterable of ChatExample / PreferenceExample / dicts
            (written to a staged JSONL file under the state directory first).
        client: an ``openai.OpenAI`` / ``AzureOpenAI``; None builds one from the environment.
        purpose: the file purpose (``"fine-tune"`` for training and validation files).
        validate: run the validator first and refuse a file with errors (:class:`DataValidationError`).
        model: the base model the validator checks token limits against.
        reuse: re-use an identical file already uploaded to the same server (confirmed with the server),
            and adopt or resume what an interrupted earlier attempt left; False abandons that attempt
            (its multi-part upload is cancelled) and sends a new copy.
        multipart_threshold: files larger than this (bytes) use the Uploads API in parts.
        part_size: bytes per part for the Uploads API.
        max_concurrency: parts in flight at once.
        progress: show a progress bar for multi-part uploads and processing.
        processing_timeout: seconds to wait for the server to process the file (None: no limit).
        retry: the retry policy for each request (default: ``DEFAULT_RETRY`` with ``sleep``).
        sleep, clock: injectable ``time.sleep`` / ``time.monotonic`` for tests.
        index: a second record of digest -> file id besides the local registry: asked when the registry
            has no entry, told about every upload and re-use. Pass
            ``finetune_wb.tracking.artifacts.ArtifactFileIndex()`` to keep the mapping with the W&B
            dataset artifacts (``openai_file_id`` in their metadata), as the CLI and the session do.

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
        return wait_processed(
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
        if index is not None:
            index.remember(sha256, file_obj.id, purpose=purpose)

    # One process at a time per content and server: a second one waits, then re-uses the first one's file.
    with claim(sha256, purpose=purpose, base_url=base_url):
        if reuse:
            existing = _reusable_file(
                client, sha256, size=size, purpose=purpose, base_url=base_url, policy=policy, index=index
            )
            if existing is not None:
                logger.info("re-using %s for %s (sha256 %s)", existing.id, path, sha256[:12])
                remember(existing)
                return processed(existing)

        # An attempt a killed process left behind: its file may be on the server already, or its upload
        # half sent. With reuse=False it is abandoned (its upload cancelled) and a new copy is sent.
        pending = load_attempt(sha256, purpose=purpose, base_url=base_url)
        if pending is not None:
            found = None
            if reuse:
                found = find_uploaded_file(
                    without_retries(client),
                    filename=pending.filename,
                    size=size,
                    purpose=purpose,
                    since=pending.started_at - CLOCK_SLACK,
                    # a multi-part file is not downloaded again to check it: name, size and time decide
                    sha256=sha256 if pending.kind == "file" else None,
                    policy=policy,
                )
            if found is not None:
                logger.info(
                    "an interrupted upload of %s had reached the server as %s; using it", path, found.id
                )
                remember(found)
                clear_attempt(sha256, purpose=purpose, base_url=base_url)
                return processed(found)
            if not reuse or pending.kind != "upload" or size <= multipart_threshold:
                cancel_quietly(without_retries(client), pending.upload_id)
                pending = None

        if size > multipart_threshold:
            file_obj = upload_multipart(
                client,
                path,
                size=size,
                md5=md5,
                sha256=sha256,
                base_url=base_url,
                purpose=purpose,
                part_size=part_size,
                max_concurrency=max_concurrency,
                progress=progress,
                policy=policy,
                resume=pending,
            )
        else:
            file_obj = _upload_single(
                client, path, purpose=purpose, sha256=sha256, size=size, policy=policy, base_url=base_url
            )

        remember(file_obj)
        clear_attempt(sha256, purpose=purpose, base_url=base_url)
        return processed(file_obj)


def _reusable_file(
    client: Any,
    sha256: str,
    *,
    size: int,
    purpose: str,
    base_url: str,
    policy: RetryPolicy,
    index: FileIndex | None,
) -> FileObject | None:
    """A file the server already has for this content, found through the local registry or the caller's
    ``index``, and confirmed with ``files.retrieve``."""
    import openai

    record = lookup_upload(sha256, purpose=purpose, base_url=base_url)
    candidates: list[tuple[str, bool]] = []  # (file id, from the registry)
    if record is not None:
        candidates.append((record.file_id, True))
    if index is not None:
        indexed = index.file_id_for(sha256, purpose=purpose)
        if indexed is not None and (record is None or indexed != record.file_id):
            candidates.append((indexed, False))
    for file_id, in_registry in candidates:
        try:
            file_obj = policy.call(without_retries(client).files.retrieve, file_id)
        except (openai.NotFoundError, openai.BadRequestError):
            # Gone (deleted, expired), or an id from another server (an index kept for several servers).
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
    client: Any, path: Path, *, purpose: str, sha256: str, size: int, policy: RetryPolicy, base_url: str
) -> FileObject:
    """``files.create`` with retries that do not leave a second copy behind.

    Like a job create, an upload whose answer was lost (a 500 after the server stored the file, a dropped
    connection) would be stored twice if simply sent again. Before each retry, after the back-off, the
    newest files are searched for the one the failed attempt made (see
    :func:`finetune_wb.jobs.files.find_uploaded_file`) and that file is used instead. The attempt is
    recorded locally before the first request, so a process killed before the answer arrived is followed
    by the same search (in :func:`upload_file`), not by a second copy.
    """
    import openai

    raw = without_retries(client)
    record = UploadAttempt(
        kind="file", sha256=sha256, purpose=purpose, base_url=base_url, filename=path.name, bytes=size
    )
    AttemptJournal(record).save()
    since = record.started_at - CLOCK_SLACK  # slack for the server's clock
    attempt = 0
    while True:
        attempt += 1
        try:
            with open(path, "rb") as fh:  # reopened for every attempt, so a retry re-sends the whole file
                return raw.files.create(file=(path.name, fh), purpose=purpose)  # type: ignore[no-any-return]
        except Exception as exc:
            if not policy.retry_on(exc):
                if isinstance(exc, openai.APIStatusError):  # refused: nothing was stored
                    clear_attempt(sha256, purpose=purpose, base_url=base_url)
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
