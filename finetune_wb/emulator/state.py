"""The emulator's state: files, uploads, jobs, events, checkpoints and fine-tuned models.

Objects are kept as the JSON dicts the API returns (so they are exactly what goes over the wire and to
disk); bookkeeping the API does not show lives in ``Store.runtime``. File contents live in a directory:
``persist_dir`` when given (then ``state.json`` next to it makes a restarted emulator keep everything),
else a temporary directory removed on close.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

ORG_ID = "org-emulator"
ORG_SLUG = "emulator-org"

#: Models the emulator can fine-tune and chat with (any ``ft:`` model of a succeeded job also chats).
FINE_TUNABLE_MODELS = (
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "gpt-3.5-turbo-0125",
)
CHAT_ONLY_MODELS = ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo")
BASE_MODELS = FINE_TUNABLE_MODELS + CHAT_ONLY_MODELS
BASE_MODEL_CREATED = 1_700_000_000

FILE_PURPOSES = ("fine-tune", "fine-tune-results", "assistants", "batch", "vision", "user_data", "evals")


class ApiError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _default_type(status)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _default_type(status: int) -> str:
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    if status == 401:
        return "invalid_request_error"
    if status == 403:
        return "permission_error"
    return "invalid_request_error"


def new_id(prefix: str, n: int = 24) -> str:
    return prefix + secrets.token_hex(n // 2 + 1)[:n]


class Store:
    """All emulator state, guarded by one re-entrant lock (the server thread and the test thread share it)."""

    _PERSISTED = ("files", "uploads", "parts", "jobs", "events", "checkpoints", "runtime", "deleted_models")
    _PERSISTED += ("batches",)  # type: ignore[assignment]  # the Batch API's objects (emulator/batches.py)

    def __init__(self, persist_dir: str | os.PathLike[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.flavour = "openai"  # "azure": Azure's id shapes (set by Core)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if persist_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="finetune-wb-emulator-")
            self.root = Path(self._tmp.name)
            self.persistent = False
        else:
            self.root = Path(persist_dir)
            self.persistent = True
        self.blob_dir = self.root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self._clear_memory()
        if self.persistent:
            self._load()
        self.model_cache: dict[str, Any] = {}
        self.validation_cache: dict[tuple[str, str, int | None, bool, str | None], Any] = {}

    def _clear_memory(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.checkpoints: dict[str, list[dict[str, Any]]] = {}
        self.runtime: dict[str, dict[str, Any]] = {}
        self.deleted_models: list[str] = []
        self.batches: dict[str, dict[str, Any]] = {}  # Batch API objects (emulator/batches.py)

    # --- persistence -------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def _load(self) -> None:
        if not self.state_path.is_file():
            return
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(
                f"{self.state_path} is not a valid emulator state file ({exc}); delete it or pick another "
                "persist_dir"
            ) from exc
        for key in self._PERSISTED:
            if key in data:
                setattr(self, key, data[key])

    def save(self) -> None:
        """Write ``state.json`` atomically (only when persisting)."""
        if not self.persistent:
            return
        with self.lock:
            data = {key: getattr(self, key) for key in self._PERSISTED}
            tmp = self.state_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.state_path)

    def reset(self) -> None:
        """Forget everything (and the persisted copy)."""
        with self.lock:
            self._clear_memory()
            self.model_cache.clear()
            self.validation_cache.clear()
            shutil.rmtree(self.blob_dir, ignore_errors=True)
            self.blob_dir.mkdir(parents=True, exist_ok=True)
            if self.persistent and self.state_path.exists():
                self.state_path.unlink()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- blobs ---------------------------------------------------------------------------------------------
    def blob_path(self, blob_id: str) -> Path:
        return self.blob_dir / blob_id

    def write_blob(self, blob_id: str, data: bytes) -> None:
        self.blob_path(blob_id).write_bytes(data)

    def read_blob(self, blob_id: str) -> bytes:
        return self.blob_path(blob_id).read_bytes()

    def incoming_path(self) -> Path:
        """A new empty file in the blob directory for content still arriving (renamed into place later)."""
        fd, name = tempfile.mkstemp(dir=self.blob_dir, prefix=".incoming-")
        os.close(fd)
        return Path(name)

    def drop_parts(self, upload_id: str) -> None:
        """Delete the stored parts of a completed or cancelled upload (their bookkeeping stays)."""
        with self.lock:
            for pid, part in self.parts.items():
                if part.get("upload_id") == upload_id:
                    self.blob_path(pid).unlink(missing_ok=True)

    # --- files ---------------------------------------------------------------------------------------------
    def add_file(
        self,
        *,
        data: bytes | None = None,
        source: Path | None = None,
        filename: str,
        purpose: str,
        now: float,
    ) -> dict[str, Any]:
        """A new file holding ``data``, or the content of ``source`` (a file in the blob directory, moved)."""
        with self.lock:
            file_id = new_id("file-")
            if source is not None:
                source.replace(self.blob_path(file_id))
            else:
                self.write_blob(file_id, data or b"")
            obj = {
                "id": file_id,
                "object": "file",
                "bytes": self.blob_path(file_id).stat().st_size,
                "created_at": int(now),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "status_details": None,
                "expires_at": None,
            }
            self.files[file_id] = obj
            self.save()
            return obj

    def get_file(self, file_id: str, *, param: str | None = None) -> dict[str, Any]:
        obj = self.files.get(file_id)
        if obj is None:
            raise ApiError(404, f"No such File object: {file_id}", param=param or "id", code="file_not_found")
        return obj

    def delete_file(self, file_id: str) -> None:
        with self.lock:
            self.get_file(file_id)
            del self.files[file_id]
            self.blob_path(file_id).unlink(missing_ok=True)
            self.save()

    # --- jobs ----------------------------------------------------------------------------------------------
    def get_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(
                404, f"Fine-tuning job {job_id} not found.", param="fine_tuning_job_id", code="not_found"
            )
        return job

    def fine_tuned_models(self) -> dict[str, dict[str, Any]]:
        """Model id -> job for every live fine-tuned model and checkpoint model."""
        out: dict[str, dict[str, Any]] = {}
        for job in self.jobs.values():
            name = job.get("fine_tuned_model")
            if name and name not in self.deleted_models:
                out[name] = job
            for ckpt in self.checkpoints.get(job["id"], []):
                if ckpt["fine_tuned_model_checkpoint"] not in self.deleted_models:
                    out[ckpt["fine_tuned_model_checkpoint"]] = job
        return out


def paginate(items: list[dict[str, Any]], *, after: str | None, limit: int, what: str) -> dict[str, Any]:
    """A cursor page over ``items`` (already newest first): the ones after the id ``after``, ``limit`` long."""
    start = 0
    if after:
        ids = [it["id"] for it in items]
        if after not in ids:
            raise ApiError(
                400, f"Invalid 'after': no {what} with id {after!r}.", param="after", code="invalid_cursor"
            )
        start = ids.index(after) + 1
    page = items[start : start + limit]
    return {"object": "list", "data": page, "has_more": start + limit < len(items)}


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid 'limit': {raw!r} is not an integer.", param="limit") from None
    if value < 1 or value > maximum:
        raise ApiError(400, f"Invalid 'limit': must be between 1 and {maximum}, got {value}.", param="limit")
    return value
