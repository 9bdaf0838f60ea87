"""How the emulator's models answer chat requests. A stand-in, not a language model.

Fine-tuned models (``ft:...``, including checkpoint models ``ft:...:ckpt-step-N``) hold the (prompt, answer)
pairs of their training file. The prompt of a pair is the text of the user messages before the last
assistant message; the answer is that assistant message's text, or its ``tool_calls`` when it has no text
(for DPO files: the user messages of
``input`` and the preferred output). A request is answered with:

1. the answer of a training prompt identical to the request's user text (case and whitespace ignored), else
2. the answer of the most similar training prompt by TF-IDF cosine similarity over lower-cased words
   (ties go to the earlier line of the file), else, when no word is shared at all,
3. the most frequent training answer.

Base models know nothing of the data. They pick a label deterministically from a hash of the request
(``Yes``/``No`` when the prompt mentions yes/no, ``True``/``False`` likewise, the two words around an
``"X or Y"`` in the prompt otherwise) and wrap it in a sentence, the way an untuned chat model rarely answers
with the bare label. The same request always gets the same answer from the same model.

Token counts in ``usage`` are an approximation: one token per word and per punctuation mark, plus the
per-message overhead OpenAI documents for chat models.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finetune_wb.schema import content_text

_WORD = re.compile(r"\w+", re.UNICODE)

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_OR_PAIR = re.compile(r"\b([A-Za-z][\w-]{0,30})\s*(?:,\s*)?or\s+([A-Za-z][\w-]{0,30})\b")


def prompt_text(messages: Iterable[Any]) -> str:
    """The user text of a list of chat messages (what the similarity search compares)."""
    msgs = [m for m in messages if isinstance(m, dict)]
    users = [content_text(m.get("content")) for m in msgs if m.get("role") == "user"]
    if not users:
        users = [content_text(m.get("content")) for m in msgs if m.get("role") != "assistant"]
    return "\n".join(users)


def _normalise(text: str) -> str:
    # the same as " ".join(text.lower().split()) without a list of every word (a 50 MB prompt stays small)
    return _SPACES.sub(" ", text.lower()).strip()


def count_tokens(text: str) -> int:
    """Approximate token count: words and punctuation marks."""
    return sum(1 for _ in _TOKEN.finditer(text))


def prompt_tokens(messages: Iterable[Any]) -> int:
    """Approximate prompt tokens of a chat request (3 per message + content + 3 for the reply primer)."""
    total = 3
    for m in messages:
        if isinstance(m, dict):
            total += 3 + count_tokens(content_text(m.get("content")))
            if m.get("name"):
                total += 1
    return total


#: What a model answers: text, or ``{"tool_calls": [...]}`` when the training answer was a tool call.
Answer = str | dict[str, Any]


def answer_of(message: dict[str, Any]) -> Answer:
    """The answer an assistant message teaches: its tool calls if it has no text, else its text."""
    text = content_text(message.get("content"))
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls and not text:
        return {"tool_calls": calls}
    return text


def pairs_from_line(obj: Any) -> tuple[str, Answer] | None:
    """The (prompt, answer) pair of one training line, or None if it has none."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("messages"), list):
        msgs = obj["messages"]
        last = max(
            (i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "assistant"),
            default=None,
        )
        if last is None:
            return None
        return prompt_text(msgs[:last]), answer_of(msgs[last])
    if isinstance(obj.get("input"), dict) and isinstance(obj.get("preferred_output"), list):
        preferred = [m for m in obj["preferred_output"] if isinstance(m, dict)]
        if not preferred:
            return None
        return prompt_text(obj["input"].get("messages") or []), answer_of(preferred[-1])
    return None


def read_pairs(path: Path) -> list[tuple[str, Answer]]:
    """Every (prompt, answer) pair of a JSONL training file; unreadable lines are skipped."""
    pairs: list[tuple[str, Answer]] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                pair = pairs_from_line(json.loads(line))
            except ValueError:
                continue
            if pair is not None:
                pairs.append(pair)
    return pairs


class NearestNeighbourModel:
    """A fine-tuned model: TF-IDF cosine nearest neighbour over its training prompts."""

    def __init__(self, pairs: list[tuple[str, Answer]]) -> None:
        self.pairs = pairs
        self._exact: dict[str, int] = {}
        for i, (prompt, _) in enumerate(pairs):
            self._exact.setdefault(_normalise(prompt), i)
        docs = [Counter(w.lower() for w in _WORD.findall(p)) for p, _ in pairs]
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        n = len(docs)
        self._idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, d in enumerate(docs):
            weights = {t: c * self._idf[t] for t, c in d.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for t, w in weights.items():
                self._postings.setdefault(t, []).append((i, w / norm))
        counts = Counter(json.dumps(a, sort_keys=True) for _, a in pairs)
        self._majority: Answer = json.loads(counts.most_common(1)[0][0]) if counts else ""

    def nearest(self, text: str) -> int | None:
        """Index of the most similar training pair, or None when no word is shared."""
        exact = self._exact.get(_normalise(text))
        if exact is not None:
            return exact
        q = Counter(m.group().lower() for m in _WORD.finditer(text))
        scores: dict[int, float] = {}
        for t, c in q.items():
            idf = self._idf.get(t)
            if idf is None:
                continue
            qw = c * idf
            for i, w in self._postings[t]:
                scores[i] = scores.get(i, 0.0) + qw * w
        if not scores:
            return None
        best = max(scores.values())
        return min(i for i, s in scores.items() if s >= best - 1e-12)

    def answer(self, messages: list[Any]) -> Answer:
        i = self.nearest(prompt_text(messages))
        return self._majority if i is None else self.pairs[i][1]


_SENTENCES = (
    "Based on the text, the answer is {label}.",
    "I would say {label}, although the wording leaves some room for interpretation.",
    "{label} — that seems the most reasonable reading of what you provided.",
    "After considering the question, my answer is {label}.",
    "It looks like {label}, but you may want to double-check the details.",
)


def _labels_for(text: str) -> tuple[str, str]:
    lower = text.lower()
    words = {m.group() for m in _WORD.finditer(lower)}
    if "yes" in words and "no" in words:
        return ("Yes", "No")
    if "true" in words and "false" in words:
        return ("True", "False")
    match = _OR_PAIR.search(text)
    if match:
        return (match.group(1), match.group(2))
    return ("Yes", "No")


def base_model_answer(model: str, messages: list[Any]) -> str:
    """A deterministic, data-free answer: a label chosen by hash, wrapped in a sentence."""
    all_text = "\n".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))
    digest = hashlib.sha256(f"{model}\n{all_text}".encode()).digest()
    labels = _labels_for(all_text)
    label = labels[digest[0] % 2]
    return _SENTENCES[digest[1] % len(_SENTENCES)].format(label=label)
