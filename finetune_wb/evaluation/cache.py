"""A local SQLite cache of model answers, so evaluations resume and re-runs cost nothing.

The key is a SHA-256 of (server base URL, model, prompt messages, generation parameters — tools,
``tool_choice`` and ``response_format`` included); the value is the answer text, its tool calls and refusal
(the ``extra`` column, added to older cache files when they are opened) and its token usage, so token
counts and cost stay right when an evaluation is resumed. Each answer is committed as soon as it arrives
(WAL journal), so a process killed with ``kill -9`` loses at most the requests that were in flight. Failed
requests are never stored: the next run asks again.

Several processes may share one cache file. SQLite's own locking (WAL, a busy timeout) keeps the file whole,
and a request being asked is *claimed* in the ``inflight`` table (owner, pid, host, deadline): another
process that needs the same answer waits for it instead of paying for it again (see
:meth:`AnswerCache.claim`). Each open cache holds an OS file lock of its own (``<cache>.owners/<owner>.lock``)
for as long as it is open; a claim whose owner's lock is free (its process ended, even by ``kill -9``) or
whose deadline passed is taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from finetune_wb._paths import lock_path_for, process_lock
from finetune_wb.errors import EvalCacheError

logger = logging.getLogger("finetune_wb.evaluation")

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    base_url TEXT NOT NULL,
    model TEXT NOT NULL,
    output TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    finish_reason TEXT,
    created REAL NOT NULL
)
"""

INFLIGHT_SCHEMA = """
CREATE TABLE IF NOT EXISTS inflight (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    claimed REAL NOT NULL,
    deadline REAL NOT NULL
)
"""

BUSY_TIMEOUT_S = 30.0
"""How long one statement waits for another process's write lock before giving up."""


class CachedAnswer(BaseModel):
    """One stored answer with the usage the server reported for it."""

    output: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: list[dict[str, str]] | None = None
    """The answer's tool calls ``[{"id", "name", "arguments"}]`` (arguments as the model wrote them)."""
    refusal: str | None = None
    """The model's refusal message, when it refused."""

    def extra_json(self) -> str | None:
        """What the ``extra`` column stores (None for a plain text answer, as rows from before it)."""
        extra = {k: v for k, v in (("tool_calls", self.tool_calls), ("refusal", self.refusal)) if v}
        return json.dumps(extra, ensure_ascii=False) if extra else None

    @classmethod
    def from_row(cls, row: Any) -> CachedAnswer:
        """``(output, prompt_tokens, completion_tokens, finish_reason, extra)`` from the answers table."""
        extra = json.loads(row[4]) if len(row) > 4 and row[4] else {}
        return cls(
            output=row[0],
            prompt_tokens=row[1],
            completion_tokens=row[2],
            finish_reason=row[3],
            tool_calls=extra.get("tool_calls"),
            refusal=extra.get("refusal"),
        )


_ANSWER_COLUMNS = "output, prompt_tokens, completion_tokens, finish_reason, extra"


def _add_extra_column(conn: sqlite3.Connection) -> None:
    """Caches from before tool calls lack the ``extra`` column (JSON: tool calls, refusal): add it."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(answers)").fetchall()}
    if "extra" in columns:
        return
    try:
        conn.execute("ALTER TABLE answers ADD COLUMN extra TEXT")
    except sqlite3.OperationalError as exc:  # another process added it first
        if "duplicate column" not in str(exc).lower():
            raise


@dataclass(frozen=True)
class Claim:
    """Another live owner is asking this request now (its pid and host are for messages only)."""

    pid: int
    host: str
    claimed: float
    deadline: float


def default_cache_path() -> Path:
    """``<state_dir>/eval_cache.sqlite3`` (see :func:`finetune_wb._paths.state_dir`)."""
    from finetune_wb._paths import state_dir

    return state_dir() / "eval_cache.sqlite3"


def cache_key(base_url: str, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """Stable key of one request; any change to the server, model, prompt or parameters misses.

    Whole-number floats count as the integer (``temperature=0`` from Python and ``0.0`` from the command
    line are the same request).
    """
    params = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in params.items()}
    payload = json.dumps(
        {"base_url": base_url.rstrip("/"), "model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _hold_owner_lock(path: Path) -> Any:
    """Take this owner's OS file lock (held while the cache is open; the OS drops it when the process ends)."""
    from filelock import FileLock, Timeout

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), thread_local=False)
        lock.acquire(timeout=0)
    except (OSError, Timeout) as exc:  # e.g. a read-only folder or a file system without locks
        logger.warning(
            "cannot hold the owner lock %s (%s): other processes sharing this answer cache will not wait for "
            "this one's requests and may ask them again",
            path,
            exc,
        )
        return None
    return lock


def _owner_alive(path: Path) -> bool:
    """Whether the owner whose lock file is ``path`` still holds it (a dead owner's lock is free)."""
    from filelock import FileLock, Timeout

    if not path.exists():
        return False  # closed: its claims are gone or stale
    probe = FileLock(str(path), thread_local=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return True  # cannot tell: rely on the claim's deadline
    probe.release()
    with suppress(OSError):
        path.unlink()
    return False


def corrupt_cache_message(path: Path, exc: BaseException) -> str:
    """What went wrong with the cache file at ``path``, and what to do about it."""
    return (
        f"the evaluation answer cache {path} is not a readable SQLite database ({exc}); move it aside "
        f"(e.g. `mv {path} {path}.corrupt`) so that a fresh cache is started, or evaluate without a cache "
        "(`finetune-wb eval --no-cache`, cache=None)"
    )


class AnswerCache:
    """SQLite-backed answer store; safe to share between the threads of one process and between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._owners_dir = self.path.with_name(self.path.name + ".owners")
        self._owner_lock = _hold_owner_lock(self._owners_dir / f"{self.owner}.lock")
        try:
            conn = sqlite3.connect(
                str(self.path), check_same_thread=False, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.Error as exc:
            self._drop_owner_lock()
            raise EvalCacheError(corrupt_cache_message(self.path, exc)) from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            # Switching a new file to WAL and creating its tables answer "database is locked" at once (no busy
            # wait) when another connection does the same at that moment: one opener at a time, across
            # threads and processes. Opening an existing cache takes this lock only for these few statements.
            with process_lock(
                lock_path_for(self.path), timeout=BUSY_TIMEOUT_S, what=f"opening the answer cache {self.path}"
            ):
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                check = conn.execute("PRAGMA quick_check(1)").fetchone()
                if check is None or check[0] != "ok":
                    raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
                conn.execute(SCHEMA)
                _add_extra_column(conn)
                conn.execute(INFLIGHT_SCHEMA)
        except (sqlite3.Error, TimeoutError) as exc:
            conn.close()
            self._conn = None
            self._drop_owner_lock()
            raise (self._error(exc) if isinstance(exc, sqlite3.Error) else EvalCacheError(str(exc))) from exc

    def _error(self, exc: sqlite3.Error) -> EvalCacheError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
            return EvalCacheError(
                f"the evaluation answer cache {self.path} stayed locked by another process for more than "
                f"{BUSY_TIMEOUT_S:.0f} s ({exc}); wait for the other evaluation to finish, or use another "
                "cache file (--cache PATH, cache=PATH)"
            )
        return EvalCacheError(corrupt_cache_message(self.path, exc))

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            if self._conn is None:
                raise EvalCacheError(f"the evaluation answer cache {self.path} is closed")
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def get(self, key: str) -> CachedAnswer | None:
        rows = self._run(f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE key = ?", (key,))
        if not rows:
            return None
        return CachedAnswer.from_row(rows[0])

    def put(self, key: str, *, base_url: str, model: str, answer: CachedAnswer) -> None:
        """Store one answer, drop its claim and commit at once (the point of the cache is surviving a crash)."""
        values = (
            key,
            base_url,
            model,
            answer.output,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.finish_reason,
            time.time(),
            answer.extra_json(),
        )
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO answers (key, base_url, model, output, prompt_tokens, "
                "completion_tokens, finish_reason, created, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            conn.execute("DELETE FROM inflight WHERE key = ? AND owner = ?", (key, self.owner))

    def put_many(self, items: list[tuple[str, CachedAnswer]], *, base_url: str, model: str) -> None:
        """Store several answers of one model in one transaction (batch mode reads them from a results file:
        one commit per group keeps 200,000 answers from costing 200,000 commits)."""
        now = time.time()
        rows = [
            (
                key,
                base_url,
                model,
                a.output,
                a.prompt_tokens,
                a.completion_tokens,
                a.finish_reason,
                now,
                a.extra_json(),
            )
            for key, a in items
        ]
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO answers (key, base_url, model, output, prompt_tokens, "
                "completion_tokens, finish_reason, created, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def claim(self, key: str, *, hold_s: float) -> CachedAnswer | Claim | None:
        """Claim ``key`` for this cache's owner for ``hold_s`` seconds, atomically across processes.

        Returns the stored answer when there is one already, a :class:`Claim` when another live owner is
        asking it (its process runs and its deadline has not passed), else None: the claim is ours (new, or
        taken over from a dead process or a passed deadline) and the caller asks the server.
        """
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return CachedAnswer.from_row(row)
            held = conn.execute(
                "SELECT owner, pid, host, claimed, deadline FROM inflight WHERE key = ?", (key,)
            ).fetchone()
            if held is not None and held[0] != self.owner and self._live(held[0], held[4], now):
                return Claim(pid=held[1], host=held[2], claimed=held[3], deadline=held[4])
            conn.execute(
                "INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?, ?, ?)",
                (key, self.owner, self.pid, self.host, now, now + hold_s),
            )
        return None

    def holder(self, key: str) -> Claim | None:
        """The live claim another owner holds on ``key``, if any (read only)."""
        rows = self._run("SELECT owner, pid, host, claimed, deadline FROM inflight WHERE key = ?", (key,))
        if not rows or rows[0][0] == self.owner or not self._live(rows[0][0], rows[0][4], time.time()):
            return None
        _owner, pid, host, claimed, deadline = rows[0]
        return Claim(pid=pid, host=host, claimed=claimed, deadline=deadline)

    def _live(self, owner: str, deadline: float, now: float) -> bool:
        """Whether the claim's owner still runs (it holds its owner lock) and its deadline has not passed.

        The owner lock is an OS file lock, released by the OS when its process ends however it ends, so a
        reused pid or a new host name (a restarted container) never keeps a dead claim alive.
        """
        if deadline < now:
            return False  # an old claim: its owner promised an answer or a refresh by now
        return _owner_alive(self._owners_dir / f"{owner}.lock")

    def extend(self, key: str, *, hold_s: float) -> None:
        """Push our claim's deadline to ``hold_s`` from now (before each attempt and each back-off)."""
        self._run(
            "UPDATE inflight SET deadline = ? WHERE key = ? AND owner = ?",
            (time.time() + hold_s, key, self.owner),
        )

    def release(self, key: str) -> None:
        """Drop our claim on ``key`` (the request failed or was cancelled); others may ask it now."""
        self._run("DELETE FROM inflight WHERE key = ? AND owner = ?", (key, self.owner))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the thread lock; SQLite errors become EvalCacheError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise EvalCacheError(f"the evaluation answer cache {self.path} is closed")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise self._error(exc) from exc

    def __len__(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM answers")[0][0])

    def close(self) -> None:
        """Drop this owner's claims and close the file."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with suppress(sqlite3.Error):  # a corrupt or locked file: the claims die with this process anyway
                conn.execute("DELETE FROM inflight WHERE owner = ?", (self.owner,))
        finally:
            conn.close()
            self._drop_owner_lock()

    def _drop_owner_lock(self) -> None:
        lock, self._owner_lock = self._owner_lock, None
        if lock is not None:
            lock.release()
            with suppress(OSError):
                Path(lock.lock_file).unlink()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
