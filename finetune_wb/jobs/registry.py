"""Where finetune_wb remembers which server file holds which content, so nothing is uploaded twice.

The local registry (``state_dir()/uploads.json``) maps ``(sha256, purpose, server)`` to the file id the
content was uploaded as. It stores ids, digests, sizes and the server's base URL (without credentials),
never keys. A :class:`FileIndex` is a second place that knows such ids: the layer above passes one to
:func:`~finetune_wb.jobs.upload.upload_file` (tracking's W&B dataset artifact record is one), and the
upload asks it when the registry has no entry and tells it about every upload. This module knows nothing
about what that index is.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from finetune_wb._paths import atomic_write_text, state_dir
from finetune_wb._secrets import safe_url

logger = logging.getLogger(__name__)

REGISTRY_FILE = "uploads.json"

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
