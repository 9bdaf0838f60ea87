"""Local JSON records under the state directory (sync records, artifact ids), and safe artifact names."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finetune_wb._paths import atomic_write_text, state_dir
from finetune_wb._secrets import scrub

logger = logging.getLogger("finetune_wb.tracking")


def safe_name(text: str, *, fallback: str = "artifact") -> str:
    """An artifact name W&B accepts: letters, digits, '-', '_' and '.' only, at most 128 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")
    return (cleaned or fallback)[:128]


_record_lock = threading.RLock()


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


def read_record(name: str) -> dict[str, Any]:
    path = records_dir() / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable local record %s (%s); it will be rewritten", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def write_record(name: str, data: dict[str, Any]) -> None:
    path = records_dir() / name
    try:
        atomic_write_text(path, json.dumps(scrub(data), indent=2, sort_keys=True))
    except OSError as exc:
        raise _unwritable(path.parent, exc) from exc


@contextmanager
def updating_record(name: str) -> Iterator[dict[str, Any]]:
    """Read-modify-write a record under a process-wide lock."""
    with _record_lock:
        data = read_record(name)
        yield data
        write_record(name, data)
