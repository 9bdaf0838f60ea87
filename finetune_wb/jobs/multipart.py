"""The Uploads API path of :func:`finetune_wb.jobs.upload.upload_file`, for files over the Files API's limit.

create the upload -> send the parts from a small thread pool (each part retried on its own) -> complete it.
Every step is recorded in the upload's progress record (:mod:`finetune_wb.jobs.upload_progress`): the
upload id once created, each part id once the server acknowledged it. A process killed half way is resumed
by the next call with the same content: only the missing parts are sent, and the same upload is completed.
An upload the server no longer accepts (expired, cancelled, unknown to it) is cancelled and a fresh one
starts; a failure cancels the upload on the server. ``uploads.complete`` is not idempotent: when its answer
is lost and the retry is refused because the upload is already completed, the file that the first attempt
made is looked up (same name, purpose and size, created since the upload began) instead of failing.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from finetune_wb._client import without_retries
from finetune_wb._progress import progress_bar
from finetune_wb.errors import UploadError
from finetune_wb.jobs.files import find_uploaded_file
from finetune_wb.jobs.upload_progress import AttemptJournal, UploadAttempt

if TYPE_CHECKING:  # pragma: no cover
    from openai.types import FileObject

    from finetune_wb._retry import RetryPolicy

logger = logging.getLogger(__name__)

MIME_TYPE = "text/jsonl"
EXPIRY_MARGIN = 300.0
"""An upload this close to its ``expires_at`` (seconds) is not resumed: the parts might not arrive in time."""
CLOCK_SLACK = 60.0
"""Seconds of difference allowed between our clock and the server's when matching creation times."""


class _NotResumable(Exception):
    """The server refused a part or the completion of a resumed upload (it is no longer pending)."""


def upload_multipart(
    client: Any,
    path: Path,
    *,
    size: int,
    md5: str,
    sha256: str,
    base_url: str,
    purpose: str,
    part_size: int,
    max_concurrency: int,
    progress: bool,
    policy: RetryPolicy,
    resume: UploadAttempt | None = None,
) -> FileObject:
    """Send ``path`` through the Uploads API: create, parts in parallel (each retried alone), complete.

    ``resume`` is the progress record a killed earlier attempt left: its upload is continued when the
    server still accepts it (only the missing parts are sent), else cancelled and replaced.
    """
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    raw = without_retries(client)
    if resume is not None and resume.upload_id:
        reason = _why_not_resumable(resume, size=size, md5=md5, part_size=part_size)
        if reason is None:
            try:
                return _run(
                    raw,
                    path,
                    AttemptJournal(resume),
                    size=size,
                    progress=progress,
                    max_concurrency=max_concurrency,
                    policy=policy,
                    resumed=True,
                )
            except _NotResumable as exc:
                found = _find_completed_file(raw, resume, size=size, policy=policy)
                if found is not None:  # killed after the server completed it, before the answer arrived
                    logger.info("upload %s had been completed as %s; using it", resume.upload_id, found.id)
                    return found  # type: ignore[no-any-return]
                reason = f"the server refused it ({exc})"
        logger.info("not resuming upload %s of %s: %s; starting a new one", resume.upload_id, path, reason)
        cancel_quietly(raw, resume.upload_id)

    attempt = UploadAttempt(
        kind="upload",
        sha256=sha256,
        purpose=purpose,
        base_url=base_url,
        filename=path.name,
        bytes=size,
        part_size=part_size,
        md5=md5,
    )
    journal = AttemptJournal(attempt)
    journal.save()  # before the create: a crash now leaves at most an upload that expires on its own
    try:
        upload = policy.call(
            raw.uploads.create, bytes=size, filename=path.name, mime_type=MIME_TYPE, purpose=purpose
        )
    except Exception as exc:
        journal.clear()
        if _is_api_error(exc):
            raise UploadError(f"could not start a multi-part upload of {path}: {exc}") from exc
        raise
    attempt.upload_id = upload.id
    attempt.upload_created_at = float(getattr(upload, "created_at", None) or 0) or None
    expires = getattr(upload, "expires_at", None)
    attempt.expires_at = float(expires) if isinstance(expires, (int, float)) else None
    journal.save()
    try:
        return _run(
            raw,
            path,
            journal,
            size=size,
            progress=progress,
            max_concurrency=max_concurrency,
            policy=policy,
            resumed=False,
        )
    except _NotResumable as exc:  # pragma: no cover - only a resumed upload raises it
        raise UploadError(f"multi-part upload {upload.id} of {path} failed: {exc}") from exc


def _why_not_resumable(attempt: UploadAttempt, *, size: int, md5: str, part_size: int) -> str | None:
    if attempt.bytes != size or (attempt.md5 and attempt.md5 != md5):
        return "the file changed since"
    if attempt.part_size != part_size:
        return f"it was sent in parts of {attempt.part_size} bytes, this call uses {part_size}"
    if attempt.expires_at is not None and attempt.expires_at - EXPIRY_MARGIN <= time.time():
        return "it has expired (or is about to)"
    return None


def _run(
    raw: Any,
    path: Path,
    journal: AttemptJournal,
    *,
    size: int,
    progress: bool,
    max_concurrency: int,
    policy: RetryPolicy,
    resumed: bool,
) -> FileObject:
    """Send the parts the record lacks, then complete; cancel the upload if that fails."""
    import openai

    attempt = journal.attempt
    upload_id = str(attempt.upload_id)
    part_size = int(attempt.part_size or size)
    offsets = list(range(0, size, part_size))
    missing = [i for i in range(len(offsets)) if i not in attempt.parts]
    if resumed:
        logger.info(
            "resuming upload %s of %s: %d of %d parts already sent",
            upload_id,
            path,
            len(offsets) - len(missing),
            len(offsets),
        )
    bar = progress_bar(
        total=size, desc=f"upload {path.name}", disable=not progress, unit="B", unit_scale=True
    )
    bar.update(sum(min(part_size, size - offsets[i]) for i in attempt.parts if i < len(offsets)))
    bar_lock = threading.Lock()

    def send(index: int) -> None:
        offset = offsets[index]
        length = min(part_size, size - offset)
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read(length)
        try:
            part = policy.call(raw.uploads.parts.create, upload_id, data=chunk)
        except (openai.NotFoundError, openai.BadRequestError) as exc:
            if resumed:
                raise _NotResumable(str(exc)) from exc
            raise
        journal.part_sent(index, part.id)
        with bar_lock:
            bar.update(length)

    try:
        pool = ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="upload-part")
        try:
            futures = [pool.submit(send, i) for i in missing]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
        finally:
            # parts not yet begun are dropped (after a failure, or Ctrl-C); the ones in flight finish first
            pool.shutdown(wait=True, cancel_futures=True)
        part_ids = [attempt.parts[i] for i in range(len(offsets))]
        completed = _complete(
            raw, attempt, part_ids=part_ids, md5=str(attempt.md5), size=size, policy=policy, resumed=resumed
        )
    except _NotResumable:
        raise  # the caller looks for a completed file, then cancels and starts again
    except BaseException as exc:
        if isinstance(exc, Exception):
            cancel_quietly(raw, upload_id)
            journal.clear()
        else:  # Ctrl-C: keep the upload and its record, so the next call resumes it within the hour
            logger.info(
                "upload %s of %s interrupted; the next upload of this file resumes it", upload_id, path
            )
        if isinstance(exc, openai.APIError):
            raise UploadError(f"multi-part upload {upload_id} of {path} failed: {exc}") from exc
        raise
    finally:
        bar.close()

    file_obj = getattr(completed, "file", None)
    if file_obj is None:
        journal.clear()
        raise UploadError(
            f"multi-part upload {upload_id} of {path} completed with status "
            f"{getattr(completed, 'status', '?')!r} but no file; upload it again"
        )
    return file_obj  # type: ignore[no-any-return]


def _is_api_error(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.APIError)


def _complete(
    raw: Any,
    attempt: UploadAttempt,
    *,
    part_ids: list[str],
    md5: str,
    size: int,
    policy: RetryPolicy,
    resumed: bool,
) -> Any:
    """``uploads.complete``, retried; a retry refused because an earlier attempt already completed the
    upload (its answer was lost) finds the file that attempt created instead of failing."""
    import openai

    attempt_no = 0
    retried = False
    while True:
        attempt_no += 1
        try:
            return raw.uploads.complete(str(attempt.upload_id), part_ids=part_ids, md5=md5)
        except Exception as exc:
            refused = isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 404, 409)
            if refused and retried:
                found = _find_completed_file(raw, attempt, size=size, policy=policy)
                if found is not None:
                    logger.info(
                        "upload %s was completed by an earlier attempt as %s", attempt.upload_id, found.id
                    )
                    return SimpleNamespace(id=attempt.upload_id, status="completed", file=found)
            if refused and resumed:
                raise _NotResumable(str(exc)) from exc
            if not policy.retry_on(exc) or attempt_no >= policy.max_attempts:
                raise
            retried = True
            policy.sleep(policy.wait_seconds(exc, attempt_no))


def _find_completed_file(raw: Any, attempt: UploadAttempt, *, size: int, policy: RetryPolicy) -> Any:
    """The newest file with this upload's name, purpose and size created since the upload began."""
    since = attempt.upload_created_at or attempt.started_at
    return find_uploaded_file(
        raw,
        filename=attempt.filename,
        size=size,
        purpose=attempt.purpose,
        since=since - CLOCK_SLACK,
        sha256=None,
        policy=policy,
    )


def cancel_quietly(raw: Any, upload_id: str | None) -> None:
    """Cancel an upload on the server, best effort (an unfinished upload expires on its own after an hour)."""
    if not upload_id:
        return
    try:
        raw.uploads.cancel(upload_id)
    except Exception as exc:
        logger.debug("could not cancel upload %s: %s", upload_id, exc)
