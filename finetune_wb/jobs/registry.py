"""Where finetune_wb remembers which server file holds which content, so nothing is uploaded twice.

The local registry (``state_dir()/uploads.json``) maps ``(sha256, purpose, server)`` to the file id the
content was uploaded as. It stores ids, digests, sizes and the server's base URL (without credentials),
never keys. A :class:`FileIndex` is a second place that knows such ids: the layer above passes one to
:func:`~finetune_wb.jobs.upload.upload_file` (tracking's W&B dataset artifact record is one), and the
upload asks it when the registry has no entry and tells it about every upload. This module knows nothing
about what that index is.

Two processes that upload the same content to the same server at once would both find no entry and both
upload it. :func:`claim` is the cross-process lock (one per content, purpose and server) that an upload
holds from "look it up" to "remember it": the second process waits, then finds the first one's entry and
re-uses its file. Every read-modify-write of the registry file itself holds the registry's own lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from finetune_wb._paths import atomic_write_text, process_lock, state_dir
from finetune_wb._secrets import safe_url
from finetune_wb.errors import UploadError

logger = logging.getLogger(__name__)

REGISTRY_FILE = "uploads.json"
REGISTRY_LOCK_TIMEOUT = 60.0
"""Seconds to wait for another process's read-modify-write of the registry file (a few ms normally)."""
CLAIM_TIMEOUT = 6 * 3600.0
"""Seconds to wait for another process uploading the same content (an 8 GB upload takes a while)."""

_registry_lock = threading.Lock()


class FileIndex(Protocol):
    """Another record of content digest -> server file id, consulted and kept up to date by an upload.

    Its record is a second source only: an implementation should log its own failures rather than raise,
    so that it never breaks an upload. A file id it returns is confirmed with the server before it is used.
    """

    def file_id_for(self, sha256: str, *, purpose: str) -> str | None:
        """The file id this index knows for content with this SHA-256 and purpose, if any."""
        ...

    def remember(self, sha256: str, file_id: str, *, purpose: str) -> None:
        """Record that content with this SHA-256 and purpose is (now) the server file ``file_id``."""
        ...


class UploadRecord(BaseModel):
    """One entry of the local upload registry."""

    sha256: str
    purpose: str
    base_url: str
    file_id: str
    filename: str
    bytes: int
    uploaded_at: float


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
    """Serialise registry updates between threads and processes (the lock file ``uploads.lock``)."""
    path = registry_path()
    with (
        _registry_lock,
        process_lock(
            path.with_suffix(".lock"),
            timeout=REGISTRY_LOCK_TIMEOUT,
            what=f"the upload registry {path}",
            error=UploadError,
        ),
    ):
        yield


@contextmanager
def claim(
    sha256: str, *, purpose: str, base_url: str, timeout: float | None = CLAIM_TIMEOUT
) -> Iterator[None]:
    """Hold the right to upload this content to this server, across processes, for the ``with`` block.

    An upload holds it from looking the content up (:func:`lookup_upload`) to recording the new file
    (:func:`remember_upload`): a second process uploading the same content waits here, then finds the
    first one's entry and re-uses that file instead of uploading a second copy. Other content, another
    purpose or another server is not held up. The lock (``state_dir()/locks/upload-<key>.lock``) is an OS
    file lock: it dies with a killed holder.

    Raises:
        UploadError: another process held the claim for more than ``timeout`` seconds.
    """
    server = safe_url(base_url)
    key = hashlib.sha256(_registry_key(sha256, purpose, server).encode("utf-8")).hexdigest()[:24]
    with process_lock(
        state_dir() / "locks" / f"upload-{key}.lock",
        timeout=timeout,
        what=f"the upload of content sha256 {sha256[:12]} ({purpose}) to {server}",
        error=UploadError,
    ):
        yield


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
