"""The local record of an upload under way, so that a process killed mid-upload is resumed, not repeated.

One small JSON file per ``(sha256, purpose, server)`` under ``state_dir()/uploads-in-progress/``, written
atomically *before* the first request of an attempt and after every part of a multi-part upload, removed
once the file is in the upload registry. It holds what a later process needs to find or finish the work:

* ``files.create`` (``kind="file"``): when the attempt began. A resume first looks for a file of the same
  name, size and purpose created since then (:func:`finetune_wb.jobs.files.find_uploaded_file`): the
  server may have stored it before the process died, with the answer never read.
* Uploads API (``kind="upload"``): the upload id, its part size and expiry, and the id of every part the
  server acknowledged. A resume sends only the missing parts and completes the same upload; one the server
  no longer accepts (expired, cancelled, unknown) is cancelled and a fresh upload starts.

Ids, digests, sizes and the server's base URL without credentials only; never a key.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from finetune_wb._paths import atomic_write_text, state_dir
from finetune_wb._secrets import safe_url

logger = logging.getLogger(__name__)

PROGRESS_DIR = "uploads-in-progress"


class UploadAttempt(BaseModel):
    """An upload that was begun and is not known to have finished."""

    kind: Literal["file", "upload"]
    sha256: str
    purpose: str
    base_url: str
    filename: str
    bytes: int
    started_at: float = Field(default_factory=time.time, description="local Unix time the attempt began")
    upload_id: str | None = Field(None, description="Uploads API: the upload the parts belong to")
    upload_created_at: float | None = None
    expires_at: float | None = Field(None, description="Uploads API: when the server drops the upload")
    part_size: int | None = None
    md5: str | None = None
    parts: dict[int, str] = Field(default_factory=dict, description="part index -> part id, as acknowledged")


def attempt_path(sha256: str, *, purpose: str, base_url: str) -> Path:
    """Where the attempt record for this content, purpose and server lives."""
    server = hashlib.sha256(f"{purpose}|{safe_url(base_url)}".encode()).hexdigest()[:12]
    return state_dir() / PROGRESS_DIR / f"{sha256[:32]}-{server}.json"


def load_attempt(sha256: str, *, purpose: str, base_url: str) -> UploadAttempt | None:
    """The unfinished attempt recorded for this content on this server, or None (a corrupt record too)."""
    path = attempt_path(sha256, purpose=purpose, base_url=base_url)
    try:
        attempt = UploadAttempt.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable upload progress record %s (%s)", path, exc)
        return None
    if attempt.sha256 != sha256 or attempt.purpose != purpose or attempt.base_url != safe_url(base_url):
        return None
    return attempt


def clear_attempt(sha256: str, *, purpose: str, base_url: str) -> None:
    """Drop the attempt record (the upload finished, or was given up and cancelled)."""
    attempt_path(sha256, purpose=purpose, base_url=base_url).unlink(missing_ok=True)


class AttemptJournal:
    """Writes one attempt's record atomically; safe to call from the threads that send the parts."""

    def __init__(self, attempt: UploadAttempt) -> None:
        attempt.base_url = safe_url(attempt.base_url)
        self.attempt = attempt
        self._lock = threading.Lock()
        self.path = attempt_path(attempt.sha256, purpose=attempt.purpose, base_url=attempt.base_url)

    def save(self) -> None:
        """Write the record as it is now (the previous version or this one survives a crash)."""
        with self._lock:
            self._write()

    def part_sent(self, index: int, part_id: str) -> None:
        """Record that the server acknowledged part ``index`` as ``part_id``."""
        with self._lock:
            self.attempt.parts[index] = part_id
            self._write()

    def clear(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        atomic_write_text(self.path, self.attempt.model_dump_json(indent=1))
