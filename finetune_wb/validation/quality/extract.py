"""One training example seen by the quality checks: its system text, its prompt, its answer, normalised.

Normalisation is what makes two texts "the same" for the checks: Unicode NFKC (only for non-ASCII text),
lower case, and every run of whitespace collapsed to one space. Digests are 64-bit BLAKE2b values, the
same on every machine and in every process (Python's own ``hash`` of a string is not).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from finetune_wb.schema import content_text

SYSTEM_ROLES = frozenset({"system", "developer"})


def words_of(text: str) -> list[str]:
    """The normalised words of ``text``: NFKC for non-ASCII text, lower case, split on whitespace."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.lower().split()


def normalise(text: str) -> str:
    return " ".join(words_of(text))


def digest(text: str) -> int:
    """A 64-bit digest of ``text`` (surrogates kept, so no string makes it raise)."""
    raw = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little")


def _message_text(msg: dict[str, Any]) -> str:
    text = content_text(msg.get("content"))
    calls = msg.get("tool_calls") or msg.get("function_call")
    if calls:
        text += ("\n" if text else "") + json.dumps(calls, sort_keys=True, ensure_ascii=False, default=str)
    return text


@dataclass
class View:
    """The parts of one example the checks compare (texts as written; normalise before comparing)."""

    system: str
    prompt: str  # every non-system message before the answer, "role: text" per line
    answer: str  # the last assistant message (DPO: the preferred output)
    texts: list[tuple[int, str]]  # (message index, text) of every message, for the secrets scan


def _plain_view(messages: list[Any]) -> View | None:
    """The common case — every message exactly ``{"role": ..., "content": "..."}`` with an assistant
    answer — in one loop; None sends anything else to the general path (same result)."""
    last = -1
    for i, m in enumerate(messages):
        if type(m) is not dict or len(m) != 2 or type(m.get("content")) is not str:
            return None
        if m.get("role") == "assistant":
            last = i
    if last < 0:
        return None
    system: list[str] = []
    prompt: list[str] = []
    for i, m in enumerate(messages):
        role = m["role"]
        if role in SYSTEM_ROLES:
            system.append(m["content"])
        elif i < last:
            prompt.append(f"{role}: {m['content']}")
    return View(
        system="\n".join(system),
        prompt="\n".join(prompt),
        answer=messages[last]["content"],
        texts=[(i, m["content"]) for i, m in enumerate(messages)],
    )


def view_of(obj: Any) -> View | None:
    """The view of a chat or DPO example; None for anything the checks cannot read (the validator
    reports those)."""
    if type(obj) is not dict:
        return None
    messages = obj.get("messages")
    if type(messages) is list:
        plain = _plain_view(messages)
        if plain is not None:
            return plain
    answer_msgs: list[Any] = []
    if messages is None:
        inp = obj.get("input")
        messages = inp.get("messages") if isinstance(inp, dict) else None
        preferred = obj.get("preferred_output")
        answer_msgs = preferred if isinstance(preferred, list) else []
    if not isinstance(messages, list):
        return None
    msgs = [m for m in messages if isinstance(m, dict)]
    last = -1
    if not answer_msgs:
        for i in range(len(msgs) - 1, -1, -1):
            if msgs[i].get("role") == "assistant":
                last = i
                break
    system: list[str] = []
    prompt: list[str] = []
    texts: list[tuple[int, str]] = []
    for i, msg in enumerate(msgs):
        text = _message_text(msg)
        texts.append((i, text))
        if i == last:
            continue
        role = msg.get("role")
        if role in SYSTEM_ROLES:
            system.append(text)
        elif last < 0 or i < last:
            prompt.append(f"{role}: {text}")
    if last >= 0:
        answer = texts[last][1]
    else:
        answer = "\n".join(_message_text(m) for m in answer_msgs if isinstance(m, dict))
        for j, m in enumerate(answer_msgs):
            if isinstance(m, dict):
                texts.append((len(msgs) + j, _message_text(m)))
    return View(system="\n".join(system), prompt="\n".join(prompt), answer=answer, texts=texts)


def iter_examples(source: Any) -> Iterator[tuple[int, Any]]:
    """(line, parsed example) from a JSONL path (streamed, unreadable lines skipped) or from examples in
    memory (ChatExample / PreferenceExample / dicts; line = 1-based position)."""
    import os
    from pathlib import Path

    if isinstance(source, (str, os.PathLike)):
        from finetune_wb.validation.accumulate import IssueCollector
        from finetune_wb.validation.reader import UNPARSED, iter_lines

        for line, value in iter_lines(Path(source), IssueCollector(0), {}):
            if value is not UNPARSED:
                yield line, value
        return
    for i, ex in enumerate(source, start=1):
        yield i, (ex.to_openai() if hasattr(ex, "to_openai") else ex)
