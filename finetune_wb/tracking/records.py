"""Local JSON records under the state directory (sync records, artifact ids), and safe artifact names."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from finetune_wb._paths import atomic_write_text, lock_path_for, process_lock, state_dir
from finetune_wb._secrets import scrub

logger = logging.getLogger("finetune_wb.tracking")


def safe_name(text: str, *, fallback: str = "artifact") -> str:
    """An artifact name W&B accepts: letters, digits, '-', '_' and '.' only, at most 128 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")
    return (cleaned or fallback)[:128]


_record_lock = threading.RLock()
_lost: set[str] = set()
"""Names of records found unreadable, with no readable backup, since the last :func:`take_lost`."""

RECORD_LOCK_TIMEOUT_S = 120.0


def _unwritable(path: Path, exc: OSError) -> Exception:
    from finetune_wb.errors import ConfigError

    return ConfigError(
        f"cannot write finetune_wb's local records under {path} ({exc.strerror or exc}); set "
        "FINETUNE_WB_HOME to a writable directory"
    )


def records_dir() -> Path:
    try:
        path = state_dir() / "tracking"
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(Path(exc.filename or os.environ.get("FINETUNE_WB_HOME") or "?"), exc) from exc
    return path


def backup_path(path: Path) -> Path:
    """The backup kept beside a record: ``<name>.bak`` (the same content, written after each rewrite)."""
    return path.with_name(path.name + ".bak")


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None), (None, None) when the file does not exist, or (None, why it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, str(exc) or type(exc).__name__
    if not isinstance(data, dict):
        return None, f"expected a JSON object, found {type(data).__name__}"
    return data, None


def read_record(name: str) -> dict[str, Any]:
    """The record ``name``; when it does not parse, its backup (with a warning naming both files).

    When neither can be read the record starts empty, the loss is logged, and :func:`take_lost` says so
    (so that a caller can rebuild what it knows from elsewhere); the damaged file is kept as
    ``<name>.corrupt`` when the record is next written.
    """
    path = records_dir() / name
    data, problem = _load(path)
    if data is not None:
        return data
    backup = backup_path(path)
    saved, backup_problem = _load(backup)
    if problem is None and saved is None:
        return {}  # a new record (no file, no backup)
    if saved is not None:
        logger.warning(
            "local record %s %s; using its backup %s instead (the record is rewritten from it)",
            path,
            f"is unreadable ({problem})" if problem else "is missing",
            backup,
        )
        return saved
    logger.warning(
        "local record %s is unreadable (%s) and its backup %s %s; starting it empty (the damaged file is kept "
        "as %s). What it held may be done again unless it can be rebuilt",
        path,
        problem,
        backup,
        f"is unreadable too ({backup_problem})" if backup_problem else "does not exist",
        path.with_name(path.name + ".corrupt"),
    )
    _lost.add(name)
    return {}


def take_lost(name: str) -> bool:
    """Whether record ``name`` was found lost (unreadable, no readable backup) since the last call."""
    with _record_lock:
        if name in _lost:
            _lost.discard(name)
            return True
        return False


def write_record(name: str, data: dict[str, Any]) -> None:
    """Write the record atomically, then its backup; a main file that does not parse is kept aside first."""
    path = records_dir() / name
    text = json.dumps(scrub(data), indent=2, sort_keys=True)
    try:
        if path.exists() and _load(path)[1] is not None:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        atomic_write_text(path, text)
        atomic_write_text(backup_path(path), text)
    except OSError as exc:
        raise _unwritable(path.parent, exc) from exc


@contextmanager
def updating_record(name: str) -> Iterator[dict[str, Any]]:
    """Read-modify-write a record under a lock held across threads and processes (its ``.lock`` file)."""
    from finetune_wb.errors import TrackingError

    path = records_dir() / name
    with _record_lock, ExitStack() as stack:
        try:
            stack.enter_context(
                process_lock(
                    lock_path_for(path),
                    timeout=RECORD_LOCK_TIMEOUT_S,
                    what=f"the local record {path}",
                    error=TrackingError,
                )
            )
        except OSError as exc:
            raise _unwritable(path.parent, exc) from exc
        data = read_record(name)
        yield data
        write_record(name, data)
