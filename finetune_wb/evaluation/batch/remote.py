"""The Batch API calls of a batch-mode evaluation: check a model, upload, create (once), retrieve, download.

``batches.create`` is the one paid call: it is sent without retries, and when it fails in a way that may
still have created the batch (a timeout, a 5xx, a dropped connection) the batches list is searched for the
shard's ``finetune_wb_shard`` metadata before anything is sent again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune_wb.errors import EvaluationError

if TYPE_CHECKING:  # pragma: no cover
    from finetune_wb._retry import RetryPolicy

SHARD_KEY = "finetune_wb_shard"
"""The metadata key naming the local shard a batch was created for."""

LOOKBACK_S = 3600
"""How far before a shard was recorded a batch created for it can be (clock skew, slow uploads)."""


def is_azure(aclient: Any) -> bool:
    try:
        import openai
    except ImportError:  # pragma: no cover
        return False
    return isinstance(aclient, (openai.AsyncAzureOpenAI, openai.AzureOpenAI))


def _dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump() if hasattr(obj, "model_dump") else dict(obj)


async def check_model(aclient: Any, model: str, base_url: str) -> str | None:
    """None when the server knows ``model``; else what is wrong (checked before any upload)."""
    from finetune_wb._retry import status_code_of

    try:
        await aclient.models.retrieve(model)
    except Exception as exc:
        status = status_code_of(exc)
        if status in (401, 403, 404):
            return (
                f"model {model!r} is not available on {base_url} (HTTP {status}: {str(exc)[:200]}); check the "
                "model id (a fine-tune's id is on its job: finetune-wb jobs get JOB_ID) and the API key; "
                "nothing was uploaded"
            )
        if status is None or status >= 500 or status == 429:
            raise
    return None


async def upload(aclient: Any, path: Path, retry: RetryPolicy) -> str:
    """Upload one input file with purpose ``batch``; its file id."""

    async def once() -> Any:
        with path.open("rb") as fh:
            return await aclient.files.create(file=(path.name, fh), purpose="batch")

    return str((await retry.acall(once)).id)


async def find_by_shard(aclient: Any, shard: str, since: float) -> dict[str, Any] | None:
    """The batch whose metadata names ``shard`` (newest first, back to ``since`` minus a margin)."""
    async for batch in aclient.batches.list(limit=100):
        data = _dump(batch)
        if (data.get("metadata") or {}).get(SHARD_KEY) == shard:
            return data
        if (data.get("created_at") or 0) < since - LOOKBACK_S:
            return None
    return None


async def create_once(
    aclient: Any, *, file_id: str, endpoint: str, metadata: dict[str, str], since: float, retry: RetryPolicy
) -> dict[str, Any]:
    """Create the batch of a shard, at most once: after a failure the shard's batch is looked up first."""
    from finetune_wb._retry import status_code_of

    shard = metadata[SHARD_KEY]
    attempt = 0
    while True:
        attempt += 1
        try:
            batch = await aclient.batches.create(
                input_file_id=file_id, endpoint=endpoint, completion_window="24h", metadata=metadata
            )
            return _dump(batch)
        except Exception as exc:
            status = status_code_of(exc)
            if status is not None and 400 <= status < 500 and status not in (408, 409, 429):
                raise EvaluationError(
                    f"the server refused to create a batch for input file {file_id} (shard {shard}): "
                    f"HTTP {status}: {str(exc)[:300]}"
                ) from exc
            found = await retry.acall(find_by_shard, aclient, shard, since)
            if found is not None:  # the create reached the server after all: never pay twice
                return found
            if not retry.retry_on(exc) or attempt >= retry.max_attempts:
                raise
            await retry.async_sleep(retry.wait_seconds(exc, attempt))


async def retrieve(aclient: Any, batch_id: str, retry: RetryPolicy) -> dict[str, Any]:
    return _dump(await retry.acall(aclient.batches.retrieve, batch_id))


async def cancel(aclient: Any, batch_id: str, retry: RetryPolicy) -> dict[str, Any]:
    return _dump(await retry.acall(aclient.batches.cancel, batch_id))


async def download(aclient: Any, file_id: str, dest: Path, retry: RetryPolicy) -> Path:
    """Stream a file's content to ``dest`` (1 MB pieces; the file is never held in memory)."""

    async def once() -> None:
        async with aclient.files.with_streaming_response.content(file_id) as response:
            with dest.open("wb") as out:
                async for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)

    dest.parent.mkdir(parents=True, exist_ok=True)
    await retry.acall(once)
    return dest
