"""One training example seen by the quality checks: its system text, its prompt, its answer, normalised.

Normalisation is what makes two texts "the same" for the checks: Unicode NFKC (only for non-ASCII text),
lower case, and every run of whitespace collapsed to one space. Digests are 64-bit values of Python's own
string hash: every comparison happens inside one process (the training and test files of one check are
read by the same process), and it is ten times cheaper than a cryptographic hash; two different texts share
a digest with a probability of about one in 2**64 per pair.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from finetune_wb.schema import content_text

SYSTEM_ROLES = frozenset({"system", "developer"})


def normalise(text: str) -> str:
    """``text`` as the checks compare it: NFKC for non-ASCII text, lower case, every run of whitespace
    one space, none at either end.

    Most ASCII text is already spaced that way; it is only lower-cased (a few ``memchr`` scans for what
    ``str.split`` splits ASCII text on tell), which spares splitting it into words and joining them again.
    """
    if text.isascii():
        lowered = text.lower()
        if (
            "  " in lowered
            or "\n" in lowered
            or "\t" in lowered
            or "\r" in lowered
            or "\x0b" in lowered
            or "\x0c" in lowered
            or "\x1c" in lowered
            or "\x1d" in lowered
            or "\x1e" in lowered
            or "\x1f" in lowered
            or lowered.startswith(" ")
            or lowered.endswith(" ")
        ):
            return " ".join(lowered.split())
        return lowered
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def words_of(text: str) -> list[str]:
    """The normalised words of ``text``."""
    normal = normalise(text)
    return normal.split(" ") if normal else []


def digest(text: str) -> int:
    """A 64-bit digest of ``text``, valid within this process (see the module docstring)."""
    return hash(text) & 0xFFFFFFFFFFFFFFFF


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


def _canonical_view(messages: list[Any]) -> View | None:
    """The most common shapes of all — exactly system, user, assistant or user, assistant, each message
    ``{"role": ..., "content": "..."}`` — without a loop; None for anything else."""
    if len(messages) == 3:
        s, u, a = messages
        if type(s) is not dict or type(u) is not dict or type(a) is not dict:
            return None
        if len(s) != 2 or len(u) != 2 or len(a) != 2:
            return None
        sc, uc, ac = s.get("content"), u.get("content"), a.get("content")
        if type(sc) is not str or type(uc) is not str or type(ac) is not str:
            return None
        if s.get("role") != "system" or u.get("role") != "user" or a.get("role") != "assistant":
            return None
        return View(system=sc, prompt="user: " + uc, answer=ac, texts=[(0, sc), (1, uc), (2, ac)])
    if len(messages) == 2:
        u, a = messages
        if type(u) is not dict or type(a) is not dict or len(u) != 2 or len(a) != 2:
            return None
        uc, ac = u.get("content"), a.get("content")
        if type(uc) is not str or type(ac) is not str:
            return None
        if u.get("role") != "user" or a.get("role") != "assistant":
            return None
        return View(system="", prompt="user: " + uc, answer=ac, texts=[(0, uc), (1, ac)])
    return None


def _plain_view(messages: list[Any]) -> View | None:
    """The common case — every message exactly ``{"role": ..., "content": "..."}`` with an assistant
    answer — in one loop; None sends anything else to the general path (same result)."""
    canonical = _canonical_view(messages)
    if canonical is not None:
        return canonical
    last = -1
    system: list[str] = []
    prompt: list[tuple[int, str]] = []
    texts: list[tuple[int, str]] = []
    for i, m in enumerate(messages):
        if type(m) is not dict or len(m) != 2:
            return None
        content = m.get("content")
        if type(content) is not str:
            return None
        texts.append((i, content))
        role = m.get("role")
        if role == "assistant":
            last = i
        if role in SYSTEM_ROLES:
            system.append(content)
        else:
            prompt.append((i, f"{role}: {content}"))
    if last < 0:
        return None
    return View(
        system="\n".join(system) if len(system) != 1 else system[0],
        prompt="\n".join([text for i, text in prompt if i < last]),
        answer=texts[last][1],
        texts=texts,
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
