"""Where finetune_wb keeps local state that must outlive a process.

Everything lives under one directory: ``$FINETUNE_WB_HOME`` when set, else ``$XDG_CACHE_HOME/finetune_wb``,
else ``~/.cache/finetune_wb``. Tests point ``FINETUNE_WB_HOME`` at a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PathLike = str | os.PathLike[str]


def state_dir() -> Path:
    """Return (and create) the directory for local registries, sync records and caches."""
    env = os.environ.get("FINETUNE_WB_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        path = Path(base) / "finetune_wb"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader (or a crash) sees the old file or the new one, never half.

    The bytes go to a unique temporary file beside ``path``, are flushed to disk, then renamed over it.
    """
    import contextlib
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (memory does not grow with the file)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_once(directory: Path, name: str, data: bytes) -> Path:
    """``directory/name`` holding ``data``: created (atomically) the first time, then left as it is.

    For content-addressed files, whose name is derived from ``data``'s digest: a second writer of the same
    content finds the file there and writes nothing.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if not path.exists():
        atomic_write_bytes(path, data)
    return path
