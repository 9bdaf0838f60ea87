"""The record of an evaluation's batches, kept in the answer cache's SQLite file beside the answers.

A shard (one input file, one model) is written here *before* its file is uploaded, its file id the moment
the upload returns and its batch id the moment ``batches.create`` returns, each in its own committed
transaction; so a process killed at any point finds, on the next run, every batch it created and which
rows are in it (a batch created but not recorded is found by its ``finetune_wb_shard`` metadata). A row
(an answer cache key) belongs to at most one live shard: it is not sent again while that batch runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from finetune_wb.errors import EvalCacheError
from finetune_wb.evaluation.cache import BUSY_TIMEOUT_S, corrupt_cache_message

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS batch_shards (
        shard TEXT PRIMARY KEY,
        base_url TEXT NOT NULL,
        model TEXT NOT NULL,
        n_requests INTEGER NOT NULL,
        est_prompt_tokens INTEGER NOT NULL DEFAULT 0,
        est_completion_tokens INTEGER NOT NULL DEFAULT 0,
        file_id TEXT,
        batch_id TEXT,
        status TEXT NOT NULL DEFAULT 'not_submitted',
        info TEXT NOT NULL DEFAULT '{}',
        collected INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS batch_rows (
        key TEXT PRIMARY KEY,
        shard TEXT,
        line INTEGER,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS batch_rows_shard ON batch_rows (shard)",
)

SHARD_COLUMNS = (
    "shard, base_url, model, n_requests, est_prompt_tokens, est_completion_tokens, file_id, batch_id, status, "
    "info, collected, created"
)


class BatchLedger:
    """Shards and rows of batch-mode evaluations in the SQLite file ``path`` (the answer cache's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode=WAL")  # as the answer cache: one commit, no fsync
            self._conn.execute("PRAGMA synchronous=NORMAL")
            for statement in SCHEMA:
                self._conn.execute(statement)
        except sqlite3.Error as exc:
            raise EvalCacheError(corrupt_cache_message(path, exc)) from exc

    def _exec(self, sql: str, args: Iterable[Any] = (), *, many: bool = False) -> list[Any]:
        with self._lock:
            try:
                if many:
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        self._conn.executemany(sql, args)  # type: ignore[arg-type]
                    except BaseException:
                        with suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                        raise
                    self._conn.execute("COMMIT")
                    return []
                return self._conn.execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise EvalCacheError(corrupt_cache_message(self.path, exc)) from exc

    # --- shards ----------------------------------------------------------------------------------------
    def add_shard(
        self,
        shard: str,
        *,
        base_url: str,
        model: str,
        keys: list[str],
        est_prompt_tokens: int,
        est_completion_tokens: int,
    ) -> None:
        """Record a shard and claim its rows, in one transaction (before its file is uploaded)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        f"INSERT INTO batch_shards ({SHARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, "
                        "'not_submitted', '{}', 0, ?)",
                        (
                            shard,
                            base_url,
                            model,
                            len(keys),
                            est_prompt_tokens,
                            est_completion_tokens,
                            time.time(),
                        ),
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO batch_rows VALUES (?, ?, ?, NULL)",
                        [(key, shard, line) for line, key in enumerate(keys, start=1)],
                    )
                except BaseException:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise EvalCacheError(corrupt_cache_message(self.path, exc)) from exc

    def set_file(self, shard: str, file_id: str) -> None:
        self._exec("UPDATE batch_shards SET file_id = ? WHERE shard = ?", (file_id, shard))

    def set_batch(self, shard: str, batch: dict[str, Any]) -> None:
        """Record the batch created for ``shard`` (its id, status, counts and files)."""
        self._exec(
            "UPDATE batch_shards SET batch_id = ?, status = ?, info = ? WHERE shard = ?",
            (batch["id"], batch["status"], json.dumps(_info(batch)), shard),
        )

    def update_info(self, shard: str, **fields: Any) -> None:
        info = self.shard(shard)["info"]
        info.update(fields)
        self._exec("UPDATE batch_shards SET info = ? WHERE shard = ?", (json.dumps(info), shard))

    def shard(self, shard: str) -> dict[str, Any]:
        rows = self._exec(f"SELECT {SHARD_COLUMNS} FROM batch_shards WHERE shard = ?", (shard,))
        return _shard_dict(rows[0])

    def live_shards(self) -> list[dict[str, Any]]:
        """Shards not yet collected (submitted or not), oldest first."""
        rows = self._exec(f"SELECT {SHARD_COLUMNS} FROM batch_shards WHERE collected = 0 ORDER BY created")
        return [_shard_dict(r) for r in rows]

    # --- rows ------------------------------------------------------------------------------------------
    def lookup(self, keys: list[str]) -> tuple[set[str], dict[str, tuple[str | None, str | None]]]:
        """For a chunk of keys (at most a few thousand): those with an answer in the cache (the ``answers``
        table of the same file), and key -> (live shard or None, last error) for those in the ledger.
        Asked chunk by chunk, so a 200,000-row evaluation never loads every row into memory."""
        marks = ",".join("?" * len(keys))
        cached = {r[0] for r in self._exec(f"SELECT key FROM answers WHERE key IN ({marks})", keys)}
        rows = self._exec(f"SELECT key, shard, error FROM batch_rows WHERE key IN ({marks})", keys)
        return cached, {r[0]: (r[1], r[2]) for r in rows}

    def keys_of(self, shard: str) -> list[tuple[str, int]]:
        return [
            (r[0], r[1]) for r in self._exec("SELECT key, line FROM batch_rows WHERE shard = ?", (shard,))
        ]

    def answered(self, keys: list[str]) -> None:
        """These rows are in the answer cache now: forget them."""
        self._exec("DELETE FROM batch_rows WHERE key = ?", [(k,) for k in keys], many=True)

    def release(self, shard: str, errors: dict[str, str], default: str) -> None:
        """The batch of ``shard`` is over: its rows still held keep their error and are free to be sent again;
        the shard is marked collected (in one transaction)."""
        keys = [k for k, _line in self.keys_of(shard)]
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "UPDATE batch_rows SET shard = NULL, line = NULL, error = ? WHERE key = ? AND shard = ?",
                    [(errors.get(k, default), k, shard) for k in keys],
                )
                conn.execute("UPDATE batch_shards SET collected = 1 WHERE shard = ?", (shard,))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise EvalCacheError(corrupt_cache_message(self.path, exc)) from exc

    def forget_shard(self, shard: str) -> None:
        """Drop a shard that was never submitted (its rows go back to being unsent)."""
        self._exec("DELETE FROM batch_rows WHERE shard = ?", (shard,))
        self._exec("DELETE FROM batch_shards WHERE shard = ?", (shard,))

    def close(self) -> None:
        with self._lock, suppress(sqlite3.Error):
            self._conn.close()


def _info(batch: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "status",
        "request_counts",
        "output_file_id",
        "error_file_id",
        "errors",
        "created_at",
        "input_file_id",
    )
    return {k: batch.get(k) for k in keep}


def _shard_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    names = [n.strip() for n in SHARD_COLUMNS.split(",")]
    out = dict(zip(names, row, strict=True))
    out["info"] = json.loads(out["info"] or "{}")
    return out
