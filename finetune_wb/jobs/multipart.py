"""The Uploads API path of :func:`finetune_wb.jobs.upload.upload_file`, for files over the Files API's limit.

create the upload -> send the parts from a small thread pool (each part retried on its own) -> complete it.
A failure cancels the upload on the server. ``uploads.complete`` is not idempotent: when its answer is lost
and the retry is refused because the upload is already completed, the file that the first attempt made is
looked up (same name, purpose and size, created since the upload began) instead of failing.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from finetune_wb._client import without_retries
from finetune_wb._progress import progress_bar
from finetune_wb.errors import UploadError
from finetune_wb.jobs.files import find_uploaded_file

if TYPE_CHECKING:  # pragma: no cover
    from openai.types import FileObject

    from finetune_wb._retry import RetryPolicy

logger = logging.getLogger(__name__)

MIME_TYPE = "text/jsonl"


def upload_multipart(
    client: Any,
    path: Path,
    *,
    size: int,
    md5: str,
    purpose: str,
    part_size: int,
    max_concurrency: int,
    progress: bool,
    policy: RetryPolicy,
) -> FileObject:
    """Send ``path`` through the Uploads API: create, parts in parallel (each retried alone), complete."""
    import openai

    if part_size <= 0:
        raise ValueError("part_size must be positive")
    raw = without_retries(client)
    try:
        upload = policy.call(
            raw.uploads.create, bytes=size, filename=path.name, mime_type=MIME_TYPE, purpose=purpose
        )
    except openai.APIError as exc:
        raise UploadError(f"could not start a multi-part upload of {path}: {exc}") from exc

    offsets = list(range(0, size, part_size))
    part_ids: list[str | None] = [None] * len(offsets)
    bar = progress_bar(
        total=size, desc=f"upload {path.name}", disable=not progress, unit="B", unit_scale=True
    )
    bar_lock = threading.Lock()

    def send(index: int) -> None:
        offset = offsets[index]
        length = min(part_size, size - offset)
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read(length)
        part = policy.call(raw.uploads.parts.create, upload.id, data=chunk)
        part_ids[index] = part.id
        with bar_lock:
            bar.update(length)

    try:
        with ThreadPoolExecutor(
            max_workers=max(1, max_concurrency), thread_name_prefix="upload-part"
        ) as pool:
            futures = [pool.submit(send, i) for i in range(len(offsets))]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for f in futures:
                    f.cancel()
                raise failed[0].exception()  # type: ignore[misc]
        completed = _complete(
            raw, upload, part_ids=[p for p in part_ids if p], md5=md5, size=size, policy=policy
        )
    except BaseException as exc:
        _cancel_quietly(raw, upload.id)
        if isinstance(exc, openai.APIError):
            raise UploadError(f"multi-part upload {upload.id} of {path} failed: {exc}") from exc
        raise
    finally:
        bar.close()

    file_obj = getattr(completed, "file", None)
    if file_obj is None:
        raise UploadError(
            f"multi-part upload {upload.id} of {path} completed with status "
            f"{getattr(completed, 'status', '?')!r} but no file; upload it again"
        )
    return file_obj  # type: ignore[no-any-return]


def _complete(raw: Any, upload: Any, *, part_ids: list[str], md5: str, size: int, policy: RetryPolicy) -> Any:
    """``uploads.complete``, retried; a retry refused because an earlier attempt already completed the
    upload (its answer was lost) finds the file that attempt created instead of failing."""
    import openai

    attempt = 0
    retried = False
    while True:
        attempt += 1
        try:
            return raw.uploads.complete(upload.id, part_ids=part_ids, md5=md5)
        except Exception as exc:
            if retried and isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 409):
                found = _find_completed_file(raw, upload, size=size, policy=policy)
                if found is not None:
                    logger.info("upload %s was completed by an earlier attempt as %s", upload.id, found.id)
                    return SimpleNamespace(id=upload.id, status="completed", file=found)
            if not policy.retry_on(exc) or attempt >= policy.max_attempts:
                raise
            retried = True
            policy.sleep(policy.wait_seconds(exc, attempt))


def _find_completed_file(raw: Any, upload: Any, *, size: int, policy: RetryPolicy) -> Any:
    """The newest file with this upload's name, purpose and size created since the upload began."""
    return find_uploaded_file(
        raw,
        filename=getattr(upload, "filename", None),
        size=size,
        purpose=getattr(upload, "purpose", None),
        since=float(getattr(upload, "created_at", 0) or 0),
        sha256=None,
        policy=policy,
    )


def _cancel_quietly(raw: Any, upload_id: str) -> None:
    try:
        raw.uploads.cancel(upload_id)
    except Exception as exc:  # best effort: an unfinished upload expires on its own after an hour
        logger.debug("could not cancel upload %s: %s", upload_id, exc)
