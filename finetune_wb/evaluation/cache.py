"""A local SQLite cache of model answers, so evaluations resume and re-runs cost nothing.

The key is a SHA-256 of (server base URL, model, prompt messages, generation parameters); the value is the
answer text and its token usage, so token counts and cost stay right when an evaluation is resumed. Each
answer is committed as soon as it arrives (WAL journal), so a process killed with ``kill -9`` loses at most
the requests that were in flight. Failed requests are never stored: the next run asks again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

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


class CachedAnswer(BaseModel):
    """One stored answer with the usage the server reported for it."""

    output: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


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


class AnswerCache:
    """SQLite-backed answer store; safe to share between the threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(SCHEMA)
        self._conn.commit()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT output, prompt_tokens, completion_tokens, finish_reason FROM answers WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return CachedAnswer(
            output=row[0], prompt_tokens=row[1], completion_tokens=row[2], finish_reason=row[3]
        )

    def put(self, key: str, *, base_url: str, model: str, answer: CachedAnswer) -> None:
        """Store one answer and commit at once (the point of the cache is surviving a crash)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    base_url,
                    model,
                    answer.output,
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    answer.finish_reason,
                    time.time(),
                ),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
