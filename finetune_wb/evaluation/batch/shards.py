"""Batch input files: one JSONL line per request, written to disk shard by shard (never all in memory).

Each line is ``{"custom_id", "method": "POST", "url", "body"}`` where ``body`` is built by
:func:`~finetune_wb.evaluation.transport.chat_body`, the builder of the synchronous engine's request, and
``custom_id`` is the answer cache key of that request; so an answer read back from a batch lands under the
very key the synchronous engine looks up, and either mode reuses the other's answers. A shard holds one
model (the Batch API wants one model per input file) and at most ``max_requests`` lines and
``max_bytes`` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_wb.errors import BatchInputError
from finetune_wb.evaluation.transport import chat_body

CHAT_URL = "/v1/chat/completions"
AZURE_CHAT_URL = "/chat/completions"


@dataclass
class ShardFile:
    """One input file on disk: its model, its rows (cache keys, in line order) and its size."""

    path: Path
    model: str
    keys: list[str] = field(default_factory=list)
    n_bytes: int = 0
    est_prompt_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RowRequest:
    """One request to put in a batch; ``index`` and ``label`` name it in messages (slots: a 200,000-row
    evaluation keeps one of these per request until its shards are written)."""

    key: str
    model: str
    messages: list[dict[str, Any]]
    index: int
    label: str = ""
    params: dict[str, Any] | None = None
    """This row's own request parameters (its tools, ``tool_choice``, ``response_format``); None: the shared ones."""

    @property
    def where(self) -> str:
        return f"example {self.index} ({self.label or self.model})"


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """About 4 characters a token (the same rough measure the synchronous engine paces its TPM by)."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // 4 + 4 * len(messages)


def request_line(req: RowRequest, params: dict[str, Any], *, url: str = CHAT_URL) -> bytes:
    """The JSONL line (with its newline) asking ``req`` through the Batch API."""
    line = {
        "custom_id": req.key,
        "method": "POST",
        "url": url,
        "body": chat_body(req.model, req.messages, params if req.params is None else req.params),
    }
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def write_shards(
    requests: Iterable[RowRequest],
    directory: Path,
    params: dict[str, Any],
    *,
    max_requests: int,
    max_bytes: int,
    url: str = CHAT_URL,
    prefix: str = "shard",
) -> Iterator[ShardFile]:
    """Write ``requests`` (grouped by model in the order given) to shard files in ``directory``.

    Yields each shard once it is complete. A single line bigger than ``max_bytes`` raises
    :class:`~finetune_wb.errors.BatchInputError` naming the row (callers write every shard before uploading
    any, so nothing is sent when one row cannot be).
    """
    directory.mkdir(parents=True, exist_ok=True)
    current: ShardFile | None = None
    out: Any = None
    count = 0
    try:
        for req in requests:
            line = request_line(req, params, url=url)
            if len(line) > max_bytes:
                raise BatchInputError(
                    f"{req.where}: its batch request line is {len(line)} bytes, over the {max_bytes}-byte limit "
                    "of a batch input file; shorten the prompt, raise the size cap (batch max_bytes, "
                    "--batch-max-mb) if the server allows it, or evaluate it synchronously (without --batch)"
                )
            full = current is not None and (
                current.model != req.model
                or len(current.keys) >= max_requests
                or current.n_bytes + len(line) > max_bytes
            )
            if current is None or full:
                if current is not None:
                    out.close()
                    yield current
                count += 1
                current = ShardFile(path=directory / f"{prefix}-{count:04d}.jsonl", model=req.model)
                out = current.path.open("wb")
            assert current is not None
            out.write(line)
            current.keys.append(req.key)
            current.n_bytes += len(line)
            current.est_prompt_tokens += estimate_prompt_tokens(req.messages)
        if current is not None:
            out.close()
            out = None
            yield current
    finally:
        if out is not None:
            out.close()
