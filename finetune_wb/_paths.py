"""Where finetune_wb keeps local state that must outlive a process.

Everything lives under one directory: ``$FINETUNE_WB_HOME`` when set, else ``$XDG_CACHE_HOME/finetune_wb``,
else ``~/.cache/finetune_wb``. Tests point ``FINETUNE_WB_HOME`` at a temporary directory.

Files that several processes share (a session's state file, the upload registry, ...) are written with
:func:`atomic_write_bytes` (a reader never sees half a file) and changed under :func:`process_lock` (two
processes never act on the same stale copy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PathLike = str | os.PathLike[str]

logger = logging.getLogger("finetune_wb")

_held = threading.local()
"""``_held.counts``: lock path -> how many times this thread holds it (a nested ``process_lock`` re-enters)."""


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


def lock_path_for(path: PathLike) -> Path:
    """The lock file that guards ``path``: ``path`` with ``.lock`` appended, beside it."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


def _holder(lock_file: Path) -> str:
    """Who holds ``lock_file``, as its holder wrote it (``pid N, <what> since HH:MM:SS``), or a guess."""
    try:
        return (lock_file.with_name(lock_file.name + ".owner")).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return "another process"


@contextmanager
def process_lock(
    path: PathLike,
    *,
    timeout: float | None,
    what: str,
    error: Callable[[str], BaseException] = TimeoutError,
) -> Iterator[None]:
    """Hold the cross-process lock file ``path`` (a :mod:`filelock` lock) for the ``with`` block.

    The lock is an OS file lock (``flock`` / ``LockFileEx``): the OS releases it when its holder exits or is
    killed, so a crashed holder never leaves it stuck. It excludes other processes and other threads of
    this one; the same thread may nest ``process_lock`` on one path (the inner one re-enters).

    Args:
        path: the lock file (created when missing; use :func:`lock_path_for` for the one guarding a file).
        timeout: seconds to wait for another holder; None waits as long as that takes. Waiting is logged
            (warning on the ``finetune_wb`` logger) with who holds the lock.
        what: what the lock guards and why, for the log and the error (e.g. "session state file X (wait)").
        error: the exception type raised, with a complete message, when ``timeout`` passes first
            (default :class:`TimeoutError`; callers pass their own ``FineTuneError`` subclass).

    Raises:
        error: another process held the lock for longer than ``timeout``; the message names the lock file,
            the holder (its pid and what it is doing) and what to do.
        OSError: the lock file cannot be created (e.g. a read-only directory).
    """
    from filelock import FileLock, Timeout

    lock_file = Path(os.path.abspath(path))
    key = str(lock_file)
    counts: dict[str, int] = _held.__dict__.setdefault("counts", {})
    if counts.get(key):
        counts[key] += 1
        try:
            yield
        finally:
            counts[key] -= 1
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(key)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        started = time.monotonic()
        logger.warning(
            "waiting for %s: %s holds its lock %s%s",
            what,
            _holder(lock_file),
            lock_file,
            "" if timeout is None else f" (for at most {timeout:g} s)",
        )
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise error(
                f"gave up waiting for {what} after {time.monotonic() - started:.0f} s: {_holder(lock_file)} "
                f"still holds its lock {lock_file}. Wait for that process to finish (or stop it) and try "
                "again; run one process at a time on this file"
            ) from None
    owner = lock_file.with_name(lock_file.name + ".owner")
    with contextlib.suppress(OSError):  # only a nicer message for a waiter is lost
        owner.write_text(f"pid {os.getpid()}, {what} since {time.strftime('%H:%M:%S')}\n", encoding="utf-8")
    counts[key] = 1
    try:
        yield
    finally:
        counts.pop(key, None)
        with contextlib.suppress(OSError):
            owner.unlink(missing_ok=True)
        lock.release()


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
