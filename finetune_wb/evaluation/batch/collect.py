"""Collecting a finished batch: its output and error files streamed to disk, read line by line, every answer
committed to the answer cache (500 per transaction), every error kept for its row.

A line that cannot be read (a corrupt or truncated file) is skipped and named; its row stays unanswered and
goes into a new batch on the next run. Nothing good is lost: the other lines are read as usual.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune_wb.evaluation.batch import remote
from finetune_wb.evaluation.batch.ledger import BatchLedger
from finetune_wb.evaluation.cache import AnswerCache, CachedAnswer
from finetune_wb.evaluation.transport import parse_completion

logger = logging.getLogger("finetune_wb.evaluation")

ANSWERED_CHUNK = 500
"""Answers read from a results file are committed to the cache this many at a time."""


async def collect_shard(
    shard: dict[str, Any],
    *,
    aclient: Any,
    cache: AnswerCache,
    ledger: BatchLedger,
    work: Path,
    retry: Any,
    keys: Sequence[Sequence[str]],
) -> dict[str, Any]:
    """Read a finished batch's output and error files into the cache; release its rows; the shard record."""
    sid, info, batch_id = shard["shard"], shard["info"], shard["batch_id"]
    line_of = dict(ledger.keys_of(sid))
    key_at = {line: key for key, line in line_of.items()}
    errors: dict[str, str] = {}
    skipped: list[str] = []
    n_answered = prompt_tokens = completion_tokens = 0
    for kind in ("output", "error"):
        file_id = info.get(f"{kind}_file_id")
        if not file_id:
            continue
        path = await remote.download(aclient, file_id, work / f"{sid}-{kind}.jsonl", retry)
        chunk: list[tuple[str, CachedAnswer]] = []
        try:
            with path.open("rb") as lines:
                for number, raw in enumerate(lines, start=1):
                    if not raw.strip():
                        continue
                    got = read_line(raw, line_of, batch_id, errors)
                    if isinstance(got, str):
                        skipped.append(f"{kind} file {file_id} line {number}: {got}")
                        continue
                    if got is not None:
                        chunk.append(got)
                        n_answered += 1
                        prompt_tokens += got[1].prompt_tokens
                        completion_tokens += got[1].completion_tokens
                        if len(chunk) >= ANSWERED_CHUNK:
                            _commit(cache, ledger, shard, chunk)
                            chunk = []
            if chunk:
                _commit(cache, ledger, shard, chunk)
        finally:
            path.unlink(missing_ok=True)
    for err in (info.get("errors") or {}).get("data") or []:
        line = err.get("line")
        message = f"batch {batch_id} failed validation: {err.get('code')}: {err.get('message')}"
        if isinstance(line, int) and line in key_at:
            errors[key_at[line]] = message + f" (input line {line})"
    validation = (info.get("errors") or {}).get("data") or []
    where = {key: i for per in keys for i, key in enumerate(per)} if validation else {}
    detail = []
    for err in validation:
        entry = dict(err)
        spot = where.get(key_at.get(err.get("line"), ""))  # type: ignore[arg-type]
        if spot is not None:
            entry["example_index"] = spot
        detail.append(entry)
    if shard["status"] == "failed":  # validation failed: no row of it was asked
        first = detail[0] if detail else {}
        reason = f"{first.get('code')}: {first.get('message')}" if first else "no reason given"
        for key in line_of:
            errors.setdefault(
                key,
                f"batch {batch_id} failed validation ({reason}, input line {first.get('line')}); "
                "this row was not asked",
            )
    for line in skipped:
        logger.warning("batch %s: skipped %s", batch_id, line)
    default = (
        f"batch {batch_id} ended {shard['status']} without an answer to this request; it is asked again "
        "in a new batch on the next run (or at once with fallback='sync', --fallback sync)"
    )
    ledger.release(sid, errors, default)
    ledger.update_info(
        sid,
        n_collected=n_answered,
        n_errored=len(line_of) - n_answered,
        skipped=skipped[:100],
        errors_detail=detail[:100],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    logger.info(
        "batch %s (%s): %d answers read into the cache, %d without an answer",
        batch_id,
        shard["model"],
        n_answered,
        len(line_of) - n_answered,
    )
    return ledger.shard(sid)


def _commit(
    cache: AnswerCache, ledger: BatchLedger, shard: dict[str, Any], chunk: list[tuple[str, CachedAnswer]]
) -> None:
    """Answers into the cache (one transaction), then out of the ledger. A crash in between loses
    nothing paid for: the shard is not collected yet, so the next run reads its results file again."""
    cache.put_many(chunk, base_url=shard["base_url"], model=shard["model"])
    ledger.answered([key for key, _a in chunk])


def read_line(
    raw: bytes, line_of: dict[str, int], batch_id: str, errors: dict[str, str]
) -> tuple[str, CachedAnswer] | str | None:
    """(key, answer) of a line that answered; a reason when the line was skipped; None for an error line
    (kept in ``errors``)."""
    try:
        item = json.loads(raw)
    except ValueError:
        return f"not a JSON line ({len(raw)} bytes; a corrupt or truncated file)"
    key = item.get("custom_id") if isinstance(item, dict) else None
    if not isinstance(key, str) or key not in line_of:
        return f"custom_id {key!r} is not a request of this batch"
    response = item.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    status = response.get("status_code") if isinstance(response, dict) else None
    if status == 200 and isinstance(body, dict) and body.get("choices"):
        return key, parse_completion(body)
    error = item.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
    text = error.get("message") if isinstance(error, dict) else str(error)
    code = error.get("code") if isinstance(error, dict) else None
    prefix = f"HTTP {status}: " if status else ""
    errors[key] = f"batch {batch_id}: {prefix}{code + ': ' if code else ''}{text}"[:500]
    return None
