"""OpenAI fine-tuning JSONL -> the rows TRL trains on, with errors that name the line.

- Supervised (``{"messages": [...], "tools": [...]}``): each example is rendered with the model's chat
  template and tokenized here, with a loss mask that covers only the assistant turns to train on: an
  assistant message with ``"weight": 0`` is context, not a target (OpenAI's rule). The mask comes from
  rendering the conversation prefix by prefix, so it works with any template whose rendering of a prefix is
  a prefix of the whole (no ``{% generation %}`` markers needed). TRL gets ``input_ids`` + ``completion_mask``.
- DPO (``{"input": {"messages": [...], "tools": [...]}, "preferred_output": [...],
  "non_preferred_output": [...]}``): mapped to TRL's conversational ``prompt`` / ``chosen`` / ``rejected``.

Only the standard library here; the tokenizer is passed in.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """A training or validation file the trainer cannot use (the message names the file's line)."""


def read_jsonl(path: str | Path, *, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line of ``path``."""
    rows: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{what} line {n}: not valid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{what} line {n}: expected a JSON object")
            rows.append((n, obj))
    if not rows:
        raise DataError(f"{what}: the file has no examples")
    return rows


def _clean_message(m: dict[str, Any]) -> dict[str, Any]:
    """A message as chat templates expect it (content text; no OpenAI-only keys such as ``weight``)."""
    out = {k: v for k, v in m.items() if k not in ("weight", "refusal")}
    content = out.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        out["content"] = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if out.get("tool_calls"):
        calls = []
        for c in out["tool_calls"]:
            fn = dict((c or {}).get("function") or {})
            args = fn.get("arguments")
            if isinstance(args, str):  # templates render arguments as a mapping
                with contextlib.suppress(ValueError):
                    fn["arguments"] = json.loads(args)
            calls.append({**c, "function": fn})
        out["tool_calls"] = calls
    if out.get("content") is None:
        out["content"] = ""
    return out


def _render(tokenizer: Any, messages: list[dict[str, Any]], tools: Any, *, generation: bool) -> str:
    text = tokenizer.apply_chat_template(
        messages, tools=tools or None, tokenize=False, add_generation_prompt=generation
    )
    return str(text)


def sft_row(tokenizer: Any, example: dict[str, Any], *, where: str, max_length: int) -> dict[str, Any]:
    """``{"input_ids", "completion_mask"}`` for one chat example (see the module docstring)."""
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: expected a non-empty 'messages' list (OpenAI chat format)")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        raise DataError(f"{where}: no assistant message to train on")
    tools = example.get("tools")
    clean = [_clean_message(m) for m in messages if isinstance(m, dict)]
    try:
        full = _render(tokenizer, clean, tools, generation=False)
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") != "assistant" or m.get("weight", 1) == 0:
                continue
            before = _render(tokenizer, clean[:i], tools, generation=True)
            through = _render(tokenizer, clean[: i + 1], tools, generation=False)
            if not (through.startswith(before) and full.startswith(through)):
                raise DataError(
                    f"{where}: the chat template renders message {i} differently depending on what follows "
                    "it, so the assistant tokens to train on cannot be located; use a model whose template "
                    "renders conversations prefix by prefix"
                )
            spans.append((len(before), len(through)))
    except DataError:
        raise
    except Exception as exc:  # jinja2 errors, templates that raise on roles they do not know
        raise DataError(f"{where}: the model's chat template cannot render this example: {exc}") from None
    if not spans:
        raise DataError(f"{where}: every assistant message has weight 0; nothing to train on")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_length]
    offsets = list(enc["offset_mapping"])[:max_length]
    mask = [1 if any(a <= s < b for a, b in spans) and e > s else 0 for s, e in offsets]
    if not any(mask):
        raise DataError(
            f"{where}: no assistant token left within max_length={max_length} tokens; shorten the example"
        )
    return {"input_ids": ids, "completion_mask": mask}


def dpo_row(example: dict[str, Any], *, where: str) -> dict[str, Any]:
    """TRL's conversational preference row for one OpenAI DPO example."""
    inp = example.get("input")
    if not isinstance(inp, dict) or not isinstance(inp.get("messages"), list) or not inp["messages"]:
        raise DataError(f"{where}: expected 'input': {{'messages': [...]}} (OpenAI preference format)")
    out: dict[str, Any] = {}
    for key, target in (("preferred_output", "chosen"), ("non_preferred_output", "rejected")):
        value = example.get(key)
        if not isinstance(value, list) or not value:
            raise DataError(f"{where}: expected '{key}' to be a list with one assistant message")
        out[target] = [_clean_message(m) for m in value if isinstance(m, dict)]
    out["prompt"] = [_clean_message(m) for m in inp["messages"] if isinstance(m, dict)]
    return out


def check_dpo_renders(tokenizer: Any, row: dict[str, Any], *, where: str) -> None:
    """Fail early, naming the line, when the template cannot render a preference example."""
    try:
        _render(tokenizer, row["prompt"], None, generation=True)
        _render(tokenizer, row["prompt"] + row["chosen"], None, generation=False)
        _render(tokenizer, row["prompt"] + row["rejected"], None, generation=False)
    except Exception as exc:
        raise DataError(f"{where}: the model's chat template cannot render this example: {exc}") from None


def load_rows(
    path: str | Path, *, method: str, tokenizer: Any, what: str, max_length: int
) -> tuple[list[dict[str, Any]], int]:
    """Rows for TRL and the number of tokens in them (prompt and completion)."""
    rows: list[dict[str, Any]] = []
    tokens = 0
    for n, obj in read_jsonl(path, what=what):
        where = f"{what} line {n}"
        if method == "dpo":
            row = dpo_row(obj, where=where)
            check_dpo_renders(tokenizer, row, where=where)
            text = _render(tokenizer, row["prompt"] + row["chosen"], None, generation=False)
            tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
        else:
            row = sft_row(tokenizer, obj, where=where, max_length=max_length)
            tokens += len(row["input_ids"])
        rows.append(row)
    return rows, tokens
