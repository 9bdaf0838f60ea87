"""Files on the server, after an upload: the one a lost answer left behind, and waiting until it is processed.

Both upload paths (:func:`finetune_wb.jobs.upload.upload_file` through ``files.create`` and
:func:`finetune_wb.jobs.multipart.upload_multipart` through the Uploads API) use these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finetune_wb._client import without_retries
from finetune_wb.errors import UploadError

if TYPE_CHECKING:  # pragma: no cover
    from openai.types import FileObject

    from finetune_wb._retry import RetryPolicy


def find_uploaded_file(
    raw: Any,
    *,
    filename: str | None,
    size: int,
    purpose: str | None,
    since: float,
    sha256: str | None,
    policy: RetryPolicy,
) -> Any:
    """The newest file with this name, purpose and size created at or after ``since`` (Unix time), or None.

    Used when an upload's answer was lost, to find the file the server made anyway. With ``sha256``, a
    candidate whose content the server lets us download must also have that digest (OpenAI refuses to
    serve ``fine-tune`` files back; then name, size, purpose and creation time decide).
    """
    import openai

    kwargs: dict[str, Any] = {"limit": 100, "order": "desc"}
    if purpose:
        kwargs["purpose"] = purpose
    page = policy.call(raw.files.list, **kwargs)
    for file_obj in page.data:
        if file_obj.created_at < since:
            break
        if file_obj.filename != filename or file_obj.bytes != size:
            continue
        if sha256 is not None:
            try:
                content = policy.call(raw.files.content, file_obj.id).content
            except openai.APIStatusError:
                content = None  # downloads of this purpose are not allowed: trust name, size and time
            if content is not None and hashlib.sha256(content).hexdigest() != sha256:
                continue
        return file_obj
    return None


def wait_processed(
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
